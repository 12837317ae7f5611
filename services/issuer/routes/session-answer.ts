/**
 * How every login answers, whatever proved who the user is (password, e-mail code, external token) and a
 * refresh: an access token, the refresh cookie and the CSRF token, never cached. One function, so the
 * login methods cannot drift apart.
 */
import type { FastifyInstance, FastifyReply } from 'fastify'
import type { AccessTokenMinter } from '../access-tokens.js'
import type { IssuerMetrics } from '../metrics.js'
import { setSessionCookies } from '../session-cookies.js'
import type { SessionGrant } from '../sessions.js'

/** The token answer's schema. */
export const TokenResponse = {
  type: 'object',
  required: ['access_token', 'token_type', 'expires_in', 'csrf_token'],
  properties: {
    access_token: { type: 'string' },
    token_type: { type: 'string' },
    expires_in: { type: 'integer' },
    csrf_token: { type: 'string' },
  },
} as const

/** Every keygate error body (lib/errors.ts), for the routes' response schemas. */
export const ErrorResponse = {
  type: 'object',
  required: ['error', 'code', 'message'],
  properties: {
    error: { type: 'string' },
    code: { type: 'string' },
    message: { type: 'string' },
  },
} as const

export interface SessionAnswerOptions {
  tokens: AccessTokenMinter
  metrics: IssuerMetrics
  now: () => number
}

/** Sends a new or refreshed session: mints the access token and sets the session cookies. */
export async function sendSession(reply: FastifyReply, grant: SessionGrant, options: SessionAnswerOptions) {
  const minted = await options.tokens.mint({
    userId: grant.user.id,
    sessionId: grant.session.id,
    clientId: grant.session.clientId,
    roles: grant.user.roles,
  })
  options.metrics.tokensIssued.inc()
  setSessionCookies(reply, { ...grant, absoluteExpiresAt: grant.session.absoluteExpiresAt }, options.now())
  return {
    access_token: minted.token,
    token_type: 'Bearer',
    expires_in: minted.expiresIn,
    csrf_token: grant.csrfToken,
  }
}

/** Marks every answer of an encapsulated route plugin `no-store` (token answers must never be cached). */
export function answerNoStore(app: FastifyInstance): void {
  app.addHook('onSend', async (_request, reply) => {
    reply.header('cache-control', 'no-store')
    reply.header('pragma', 'no-cache')
  })
}
