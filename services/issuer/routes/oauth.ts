/**
 * The OAuth endpoints registered clients call: token (RFC 6749 §3.2), revocation (RFC 7009) and
 * introspection (RFC 7662). Each takes a form body alone (oauth/form.ts), authenticates the client first
 * (oauth/client-authentication.ts), answers `Cache-Control: no-store`, and counts requests per client
 * address against OAUTH_RATE_LIMIT. The browser's cookie endpoints (`/auth/*`) are separate and unchanged.
 */
import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { KeygateError } from '../../../lib/errors.js'
import { noContent } from '../../../lib/openapi.js'
import type { ClientAuthentication } from '../oauth/client-authentication.js'
import { acceptFormsOnly, FORM_CONTENT_TYPE, type OAuthForm } from '../oauth/form.js'
import type { Grants } from '../oauth/grants.js'
import type { TokenStatus } from '../oauth/token-status.js'

export const TOKEN_PATH = '/oauth/token'
export const REVOCATION_PATH = '/oauth/revoke'
export const INTROSPECTION_PATH = '/oauth/introspect'

/** Distinct (endpoint, address) counters remembered; the least recently seen go first. */
const RATE_LIMIT_KEYS = 10_000

export interface OAuthRoutesOptions {
  /** The issuer identifier; endpoint URLs are built on it. */
  issuer: string
  authentication: ClientAuthentication
  grants: Grants
  tokenStatus: TokenStatus
  rateLimit: { max: number; windowMs: number }
}

const Param = { type: 'string', maxLength: 16_384 } as const
const Repeatable = { anyOf: [Param, { type: 'array', items: Param, maxItems: 16 }] } as const
/** Any form parameters (unknown ones are ignored, RFC 6749 §3.2); `resource` and `audience` may repeat. */
const FormBody = {
  type: 'object',
  additionalProperties: Param,
  properties: { resource: Repeatable, audience: Repeatable },
} as const
/** RFC 6749 §5.2 errors, with keygate's code and message beside `error_description`. */
const OAuthErrorResponse = {
  type: 'object',
  required: ['error'],
  properties: {
    error: { type: 'string' },
    error_description: { type: 'string' },
    code: { type: 'string' },
    message: { type: 'string' },
  },
} as const
const Errors = {
  400: OAuthErrorResponse,
  401: OAuthErrorResponse,
  403: OAuthErrorResponse,
  413: OAuthErrorResponse,
  415: OAuthErrorResponse,
  429: OAuthErrorResponse,
} as const
const TokenResponse = {
  type: 'object',
  required: ['access_token', 'token_type', 'expires_in', 'scope'],
  properties: {
    access_token: { type: 'string' },
    token_type: { type: 'string', enum: ['Bearer'] },
    expires_in: { type: 'integer' },
    scope: { type: 'string' },
    issued_token_type: { type: 'string' },
  },
} as const
/** RFC 7662 §2.2: `active`, then the token's claims as signed. */
const IntrospectionResponse = {
  type: 'object',
  required: ['active'],
  additionalProperties: true,
  properties: { active: { type: 'boolean' } },
} as const

/** Registers the OAuth endpoints (an encapsulated plugin: the form parser stays here). */
export async function oauthRoutes(app: FastifyInstance, options: OAuthRoutesOptions): Promise<void> {
  const { issuer, authentication, grants, tokenStatus } = options
  acceptFormsOnly(app)
  await app.register(rateLimit, { global: false, cache: RATE_LIMIT_KEYS })
  const limiter = app.createRateLimit({
    max: options.rateLimit.max,
    timeWindow: options.rateLimit.windowMs,
    keyGenerator: (request) => `${request.routeOptions.url} ${request.ip}`,
  })
  app.addHook('onRequest', async (request, reply) => {
    reply.header('cache-control', 'no-store').header('pragma', 'no-cache')
    const result = await limiter(request)
    if (!result.isAllowed && result.isExceeded) {
      throw new KeygateError('KG_RATE_LIMITED', {
        headers: { 'retry-after': String(Math.max(1, result.ttlInSeconds)) },
      })
    }
  })

  const formOf = (request: FastifyRequest) => (request.body ?? {}) as OAuthForm
  const endpoint = (path: string) => `${issuer}${path}`

  app.post(
    TOKEN_PATH,
    {
      schema: { consumes: [FORM_CONTENT_TYPE], body: FormBody, response: { 200: TokenResponse, ...Errors } },
    },
    async (request) => {
      const form = formOf(request)
      const client = await authentication.authenticate(request, form, endpoint(TOKEN_PATH))
      const answer = await grants.grant(client, form)
      request.log.info({ clientId: client.id, grantType: form.grant_type }, 'token issued to a client')
      return answer
    },
  )

  app.post(
    REVOCATION_PATH,
    {
      schema: {
        consumes: [FORM_CONTENT_TYPE],
        body: FormBody,
        response: {
          // RFC 7009 §2.2: 200 whether or not the token was valid, with no body.
          200: noContent('The token is revoked, or was not valid (RFC 7009 §2.2); no body'),
          ...Errors,
        },
      },
    },
    async (request, reply: FastifyReply) => {
      const form = formOf(request)
      const client = await authentication.authenticate(request, form, endpoint(REVOCATION_PATH))
      const revoked = await tokenStatus.revoke(client, form)
      request.log.info({ clientId: client.id, revoked }, 'token revocation requested')
      return reply.code(200).send()
    },
  )

  app.post(
    INTROSPECTION_PATH,
    {
      schema: {
        consumes: [FORM_CONTENT_TYPE],
        body: FormBody,
        response: { 200: IntrospectionResponse, ...Errors },
      },
    },
    async (request) => {
      const form = formOf(request)
      const client = await authentication.authenticate(request, form, endpoint(INTROSPECTION_PATH))
      return tokenStatus.introspect(client, form)
    },
  )
}
