/**
 * The browser-facing account routes under `/auth`: register, login, refresh, logout, logout everywhere and
 * password change. Every answer here is `Cache-Control: no-store` (token responses must never be cached).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { KeygateError } from '../../../lib/errors.js'
import { noContent } from '../../../lib/openapi.js'
import type { AccessTokenMinter } from '../access-tokens.js'
import type { Accounts } from '../accounts.js'
import type { IssuerSettings } from '../config.js'
import type { IssuerMetrics } from '../metrics.js'
import { requireLoginMethod } from '../login-methods.js'
import { clearSessionCookies, csrfHeader, REFRESH_COOKIE, refuseCrossSite } from '../session-cookies.js'
import type { SessionGrant, Sessions } from '../sessions.js'
import { answerNoStore, sendSession, TokenResponse } from './session-answer.js'

export interface AuthRoutesOptions {
  settings: IssuerSettings
  accounts: Accounts
  sessions: Sessions
  tokens: AccessTokenMinter
  metrics: IssuerMetrics
  now: () => number
}

/** Generous bounds: the policy is checked in code with a clear message; these only cap the work. */
const Email = { type: 'string', minLength: 1, maxLength: 1024 } as const
const Password = { type: 'string', minLength: 1, maxLength: 1024 } as const

const Credentials = {
  type: 'object',
  required: ['email', 'password'],
  additionalProperties: false,
  properties: { email: Email, password: Password },
} as const

/** What registration answers, the same whether or not the e-mail already had an account. */
const RegisterResponse = {
  type: 'object',
  required: ['email'],
  additionalProperties: false,
  properties: { email: { type: 'string' } },
} as const

/** Refresh and logout take no body; an empty JSON object is tolerated for clients that always send one. */
const NoBody = { type: 'object', additionalProperties: false, maxProperties: 0 } as const

const REQUIRED = { auth: { mode: 'required' } } as const

/** Registers the `/auth/*` routes. */
export async function authRoutes(app: FastifyInstance, options: AuthRoutesOptions): Promise<void> {
  const { settings, accounts, sessions, tokens, metrics, now } = options

  answerNoStore(app)
  const sendTokens = (reply: FastifyReply, grant: SessionGrant) =>
    sendSession(reply, grant, { tokens, metrics, now })

  /** The refresh cookie, refusing a cross-site request first. */
  function browserSession(request: FastifyRequest): string | undefined {
    try {
      refuseCrossSite(request, settings.allowedOrigins)
    } catch (err) {
      if (request.routeOptions.url === '/auth/refresh') metrics.refreshes.inc({ outcome: 'cross_site' })
      throw err
    }
    const cookie = request.cookies[REFRESH_COOKIE]
    return cookie ? cookie : undefined
  }

  // 202 with the same body whether the account was created or the e-mail already had one: registration
  // must not tell anyone which addresses have accounts. The owner of a taken address is not told (keygate
  // sends no mail); the attempt is logged with the existing account's id.
  app.post<{ Body: { email: string; password: string } }>(
    '/auth/register',
    { schema: { body: Credentials, response: { 202: RegisterResponse } } },
    async (request, reply) => {
      if (!settings.registrationOpen) throw new KeygateError('KG_REGISTRATION_CLOSED')
      // Registration sets a password: pointless, and misleading, while password login is off.
      requireLoginMethod(settings.loginMethods, 'password')
      const result = await accounts.register(request.body.email, request.body.password, request.ip)
      if (result.created) request.log.info({ userId: result.created.id }, 'account registered')
      else request.log.info({ userId: result.existing?.id }, 'registration for an existing account: ignored')
      return reply.code(202).send({ email: result.email })
    },
  )

  app.post<{ Body: { email: string; password: string } }>(
    '/auth/login',
    { schema: { body: Credentials, response: { 200: TokenResponse } } },
    async (request, reply) => {
      requireLoginMethod(settings.loginMethods, 'password')
      const user = await accounts.authenticate(request.body.email, request.body.password, request.ip)
      const grant = await sessions.start(user, settings.clientId)
      request.log.info({ userId: user.id, sessionId: grant.session.id }, 'logged in')
      return sendTokens(reply, grant)
    },
  )

  app.post(
    '/auth/refresh',
    { schema: { body: { ...NoBody, nullable: true }, response: { 200: TokenResponse } } },
    async (request, reply) => {
      const refreshToken = browserSession(request)
      if (!refreshToken) {
        metrics.refreshes.inc({ outcome: 'invalid' })
        throw new KeygateError('KG_REFRESH_INVALID')
      }
      const grant = await sessions.refresh(refreshToken, csrfHeader(request), request.log)
      return sendTokens(reply, grant)
    },
  )

  app.post(
    '/auth/logout',
    {
      schema: {
        body: { ...NoBody, nullable: true },
        response: { 204: noContent('The session revoked (if any) and the session cookies cleared') },
      },
    },
    async (request, reply) => {
      const refreshToken = browserSession(request)
      if (refreshToken) await sessions.logout(refreshToken, csrfHeader(request))
      clearSessionCookies(reply)
      return reply.code(204).send()
    },
  )

  app.post(
    '/auth/logout-all',
    {
      config: REQUIRED,
      schema: {
        body: { ...NoBody, nullable: true },
        response: {
          204: noContent("Every session of the caller's revoked and the session cookies cleared"),
        },
      },
    },
    async (request, reply) => {
      const userId = request.identity!.subject
      const count = await sessions.revokeAll(userId, 'logout_all')
      request.log.info({ userId, sessions: count }, 'logged out everywhere')
      clearSessionCookies(reply)
      return reply.code(204).send()
    },
  )

  app.post<{ Body: { current_password: string; new_password: string } }>(
    '/auth/password',
    {
      config: REQUIRED,
      schema: {
        body: {
          type: 'object',
          required: ['current_password', 'new_password'],
          additionalProperties: false,
          properties: { current_password: Password, new_password: Password },
        },
        response: {
          204: noContent('The password changed, every session revoked and the session cookies cleared'),
        },
      },
    },
    async (request, reply) => {
      const userId = request.identity!.subject
      await accounts.changePassword(
        userId,
        request.body.current_password,
        request.body.new_password,
        request.ip,
      )
      request.log.info({ userId }, 'password changed; every session revoked')
      clearSessionCookies(reply)
      return reply.code(204).send()
    },
  )
}
