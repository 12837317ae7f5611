/**
 * E-mail code login: `POST /auth/email-code` `{ email }` mails a one-time code (202, the same answer
 * whether or not the address has an account); `POST /auth/email-code/verify` `{ email, code }` answers like
 * password login. Both 403 `KG_LOGIN_METHOD_DISABLED` unless LOGIN_METHODS has `email-code`.
 */
import type { FastifyInstance } from 'fastify'
import type { IssuerSettings } from '../config.js'
import { EMAIL_CODE_PATTERN } from '../email-code-settings.js'
import type { EmailCodes } from '../email-codes.js'
import { requireLoginMethod } from '../login-methods.js'
import type { Sessions } from '../sessions.js'
import {
  answerNoStore,
  ErrorResponse,
  sendSession,
  type SessionAnswerOptions,
  TokenResponse,
} from './session-answer.js'

export interface EmailCodeRoutesOptions extends SessionAnswerOptions {
  settings: IssuerSettings
  emailCodes: EmailCodes
  sessions: Sessions
}

const Email = { type: 'string', minLength: 1, maxLength: 1024 } as const

const CodeRequest = {
  type: 'object',
  required: ['email'],
  additionalProperties: false,
  properties: { email: Email },
} as const

/** The same for every address: the normalised e-mail and how long a code lives. */
const CodeRequested = {
  type: 'object',
  required: ['email', 'expires_in'],
  additionalProperties: false,
  properties: { email: { type: 'string' }, expires_in: { type: 'integer' } },
} as const

const CodeVerification = {
  type: 'object',
  required: ['email', 'code'],
  additionalProperties: false,
  properties: { email: Email, code: { type: 'string', pattern: EMAIL_CODE_PATTERN } },
} as const

const Errors = { 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse, 429: ErrorResponse } as const

/** Registers the e-mail code routes. */
export async function emailCodeRoutes(app: FastifyInstance, options: EmailCodeRoutesOptions): Promise<void> {
  const { settings, emailCodes, sessions } = options
  answerNoStore(app)

  app.post<{ Body: { email: string } }>(
    '/auth/email-code',
    { schema: { body: CodeRequest, response: { 202: CodeRequested, ...Errors } } },
    async (request, reply) => {
      requireLoginMethod(settings.loginMethods, 'email-code')
      const email = await emailCodes.request(request.body.email, request.ip)
      return reply.code(202).send({ email, expires_in: Math.floor(settings.emailCodeTtlMs / 1000) })
    },
  )

  app.post<{ Body: { email: string; code: string } }>(
    '/auth/email-code/verify',
    { schema: { body: CodeVerification, response: { 200: TokenResponse, ...Errors } } },
    async (request, reply) => {
      requireLoginMethod(settings.loginMethods, 'email-code')
      const user = await emailCodes.verify(request.body.email, request.body.code, request.ip)
      const grant = await sessions.start(user, settings.clientId)
      request.log.info({ userId: user.id, sessionId: grant.session.id, method: 'email-code' }, 'logged in')
      return sendSession(reply, grant, options)
    },
  )
}
