/**
 * Every error keygate answers with, in one catalogue. A code is stable: clients and dashboards may match on it.
 * `error` is the RFC 6749/6750 error name where one exists, otherwise a short snake-case class. The
 * verification plugin's codes and the KeygateError class live in @keygate/fastify-auth (lib/auth/errors.ts);
 * this catalogue includes them and defines the rest. Every code here is documented in docs/errors.md (a test
 * checks it).
 */
import { randomUUID } from 'node:crypto'
import { type ServerResponse, STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import { AUTH_ERRORS, defineErrors, type ErrorSpec, KeygateError } from '@keygate/fastify-auth'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'

export { type ErrorSpec, KeygateError, type KeygateErrorOptions } from '@keygate/fastify-auth'

export const ERRORS = defineErrors({
  // Request shape
  KG_MALFORMED_JSON: { status: 400, error: 'invalid_request', message: 'The request body is not valid JSON' },
  KG_UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    error: 'invalid_request',
    message: 'The request content type is not supported',
  },
  KG_PAYLOAD_TOO_LARGE: { status: 413, error: 'invalid_request', message: 'The request body is too large' },
  KG_MALFORMED_URL: { status: 400, error: 'invalid_request', message: 'The request URL is malformed' },
  KG_URL_TOO_LONG: {
    status: 414,
    error: 'invalid_request',
    message: 'A segment of the request URL is too long',
  },
  KG_MALFORMED_REQUEST: {
    status: 400,
    error: 'invalid_request',
    message: 'The request is not well-formed HTTP',
  },
  KG_HEADERS_TOO_LARGE: {
    status: 431,
    error: 'invalid_request',
    message: 'The request headers are too large',
  },
  KG_HOST_INVALID: {
    status: 400,
    error: 'invalid_request',
    message: 'The request must carry exactly one Host header',
  },
  KG_TRANSFER_CODING_UNSUPPORTED: {
    status: 501,
    error: 'not_implemented',
    message: 'The request uses a transfer coding other than chunked',
  },
  KG_NOT_FOUND: { status: 404, error: 'not_found', message: 'Not found' },
  KG_RATE_LIMITED: { status: 429, error: 'rate_limited', message: 'Too many requests' },
  KG_REQUEST_TIMEOUT: {
    status: 408,
    error: 'request_timeout',
    message: 'The request was not received in time',
  },
  KG_INTERNAL: { status: 500, error: 'server_error', message: 'Internal server error' },
  KG_NOT_READY: { status: 503, error: 'temporarily_unavailable', message: 'The service is not ready' },

  // Bearer tokens (RFC 6750): the verification plugin's own, listed in @keygate/fastify-auth
  ...AUTH_ERRORS,
  // Browser sessions
  KG_CSRF_FAILED: { status: 403, error: 'access_denied', message: 'CSRF proof is missing or invalid' },
  KG_CROSS_SITE: { status: 403, error: 'access_denied', message: 'Cross-site requests are refused' },
  // Issuer: accounts, sessions, keys
  KG_INVALID_CREDENTIALS: { status: 401, error: 'invalid_grant', message: 'Invalid e-mail or password' },
  KG_ACCOUNT_DISABLED: { status: 403, error: 'access_denied', message: 'This account is disabled' },
  KG_DISABLE_SELF: { status: 409, error: 'conflict', message: 'An admin cannot disable their own account' },
  KG_REFRESH_INVALID: {
    status: 401,
    error: 'invalid_grant',
    message: 'The refresh token is invalid or expired',
  },
  KG_REFRESH_REUSED: {
    status: 401,
    error: 'invalid_grant',
    message: 'The refresh token was already used; the session has been revoked',
  },
  KG_EMAIL_TAKEN: { status: 409, error: 'conflict', message: 'An account with this e-mail already exists' },
  KG_REGISTRATION_CLOSED: {
    status: 403,
    error: 'access_denied',
    message: 'Registration is closed; ask an administrator for an account',
  },
  KG_LOGIN_THROTTLED: {
    status: 429,
    error: 'rate_limited',
    message: 'Too many login attempts; try again later',
  },
  KG_USER_NOT_FOUND: { status: 404, error: 'not_found', message: 'No such user' },
  KG_KEY_NOT_FOUND: { status: 404, error: 'not_found', message: 'No such signing key' },
  KG_KEY_STATE_CONFLICT: {
    status: 409,
    error: 'conflict',
    message: 'The signing key is not in a state that allows this',
  },
  KG_FEED_UNAUTHORIZED: {
    status: 401,
    error: 'invalid_token',
    message: 'The revocation feed requires verifier credentials',
  },
  KG_KEY_ROTATION_TOO_EARLY: {
    status: 409,
    error: 'conflict',
    message: 'The next signing key has not been published long enough to sign; retry later',
  },
  KG_SESSION_NOT_FOUND: { status: 404, error: 'not_found', message: 'No such session' },
  KG_LOGIN_METHOD_DISABLED: {
    status: 403,
    error: 'access_denied',
    message: 'This login method is disabled on this issuer',
  },
  KG_EMAIL_CODE_INVALID: {
    status: 401,
    error: 'invalid_grant',
    message: 'The code is wrong, expired or already used; request a new one',
  },
  KG_EXTERNAL_IDENTITY_UNLINKED: {
    status: 403,
    error: 'access_denied',
    message: 'This external identity is not linked to an account; log in another way and link it',
  },
  KG_EXTERNAL_TOKEN_INACTIVE: {
    status: 401,
    error: 'invalid_token',
    message: 'The external token is no longer active at its issuer (revoked or expired there)',
  },
  KG_EXTERNAL_ISSUER_UNAVAILABLE: {
    status: 503,
    error: 'temporarily_unavailable',
    message: 'The external issuer could not say whether the token is still active; retry later',
  },
  KG_IDENTITY_LINKED_ELSEWHERE: {
    status: 409,
    error: 'conflict',
    message: 'This external identity is already linked to another account',
  },
  KG_IDENTITY_NOT_FOUND: { status: 404, error: 'not_found', message: 'No such linked identity' },
  KG_FEED_BUSY: {
    status: 503,
    error: 'temporarily_unavailable',
    message: 'The revocation feed is serving as many streams as it can; retry later or use another instance',
  },

  // Issuer: OAuth endpoints (RFC 6749 §5.2, RFC 7009, RFC 7662, RFC 8693, RFC 8707)
  KG_OAUTH_INVALID_REQUEST: {
    status: 400,
    error: 'invalid_request',
    message: 'The OAuth request is malformed or misses a parameter',
  },
  KG_OAUTH_INVALID_CLIENT: { status: 401, error: 'invalid_client', message: 'Client authentication failed' },
  KG_OAUTH_CLIENT_THROTTLED: {
    status: 429,
    error: 'rate_limited',
    message: 'Too many failed client authentications; try again later',
  },
  KG_OAUTH_UNAUTHORIZED_CLIENT: {
    status: 400,
    error: 'unauthorized_client',
    message: 'The client may not use this grant type',
  },
  KG_OAUTH_UNSUPPORTED_GRANT_TYPE: {
    status: 400,
    error: 'unsupported_grant_type',
    message: 'The grant type is not supported',
  },
  KG_OAUTH_INVALID_GRANT: {
    status: 400,
    error: 'invalid_grant',
    message: 'The grant is invalid, expired or revoked',
  },
  KG_OAUTH_INVALID_SCOPE: {
    status: 400,
    error: 'invalid_scope',
    message: 'The requested scope exceeds what the client (and subject) may have',
  },
  KG_OAUTH_INVALID_TARGET: {
    status: 400,
    error: 'invalid_target',
    message: 'The requested resource or audience is unknown or not allowed for this client',
  },
  KG_OAUTH_INTROSPECTION_FORBIDDEN: {
    status: 403,
    error: 'unauthorized_client',
    message: 'The client may not introspect tokens',
  },
  KG_CLIENT_NOT_FOUND: { status: 404, error: 'not_found', message: 'No such client' },

  // Gateway
  KG_ROUTE_NOT_FOUND: { status: 404, error: 'not_found', message: 'No route matches this path' },
  KG_UPSTREAM_UNAVAILABLE: {
    status: 502,
    error: 'bad_gateway',
    message: 'The upstream service is unavailable',
  },
  KG_UPSTREAM_TIMEOUT: { status: 504, error: 'gateway_timeout', message: 'The upstream service timed out' },
  KG_CLIENT_BUSY: {
    status: 429,
    error: 'rate_limited',
    message: 'Too many requests in progress from this client; retry once one has finished',
  },
  KG_ROUTE_BUSY: {
    status: 503,
    error: 'temporarily_unavailable',
    message: 'The route is carrying as many requests as it may; retry later',
  },

  // Services
  KG_PROFILE_UNAVAILABLE: {
    status: 502,
    error: 'bad_gateway',
    message: 'The profile service could not be reached on the caller’s behalf',
  },
  KG_LINK_INVALID: { status: 401, error: 'invalid_token', message: 'The download link is invalid' },
  KG_LINK_GONE: {
    status: 410,
    error: 'gone',
    message: 'The download link was already used or has expired',
  },
  KG_QUOTA_EXCEEDED: {
    status: 413,
    error: 'quota_exceeded',
    message: 'Storing this would exceed your quota; delete files to make room',
  },
})

declare module '@keygate/fastify-auth' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type -- merges keygate's codes into the plugin's
  interface ErrorCatalogue extends Record<keyof typeof ERRORS, ErrorSpec> {}
}

export type ErrorCode = keyof typeof ERRORS

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'KG_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'KG_INVALID_REQUEST',
  FST_ERR_CTP_BODY_TOO_LARGE: 'KG_PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'KG_MALFORMED_JSON',
  FST_ERR_CTP_INVALID_JSON_BODY: 'KG_MALFORMED_JSON',
  FST_ERR_CTP_EMPTY_TYPE: 'KG_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_TYPE: 'KG_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_VALIDATION: 'KG_INVALID_REQUEST',
  FST_ERR_BAD_URL: 'KG_MALFORMED_URL',
  FST_ERR_MAX_PARAM_LENGTH: 'KG_URL_TOO_LONG',
  FST_ERR_ASYNC_CONSTRAINT: 'KG_INVALID_REQUEST',
}

/**
 * The one place where errors of the framework and its plugins become catalogue errors. Messages of
 * unknown errors are never passed on: a JSON parser's message, for one, quotes the body it choked on.
 */
export function toKeygateError(err: unknown): KeygateError {
  if (err instanceof KeygateError) return err
  const e = err as Partial<FastifyError> & { validation?: Array<{ instancePath?: string; message?: string }> }
  if (e.validation) {
    const first = e.validation[0]
    const where = `${e.validationContext ?? 'body'}${first?.instancePath ?? ''}`
    return new KeygateError('KG_INVALID_REQUEST', {
      message: `Invalid ${where}: ${first?.message ?? 'does not match the schema'}`,
      cause: err,
    })
  }
  const mapped = typeof e.code === 'string' ? FASTIFY_CODES[e.code] : undefined
  if (mapped) return new KeygateError(mapped, { cause: err })
  if (err instanceof SyntaxError) return new KeygateError('KG_MALFORMED_JSON', { cause: err })
  const status = typeof e.statusCode === 'number' ? e.statusCode : 500
  if (status === 413) return new KeygateError('KG_PAYLOAD_TOO_LARGE', { cause: err })
  if (status === 415) return new KeygateError('KG_UNSUPPORTED_MEDIA_TYPE', { cause: err })
  if (status === 429) return new KeygateError('KG_RATE_LIMITED', { cause: err })
  if (status === 404) return new KeygateError('KG_NOT_FOUND', { cause: err })
  if (status >= 400 && status < 500) return new KeygateError('KG_INVALID_REQUEST', { cause: err })
  return new KeygateError('KG_INTERNAL', { cause: err })
}

/**
 * Headers of every error answer: the request id (so a client can quote it and logs can be searched for it),
 * and never cached or sniffed (a 404 or 414 is otherwise cacheable by default, RFC 9111 §4.2.2).
 */
function errorHeaders(reply: FastifyReply): Record<string, string> {
  return {
    'x-request-id': reply.request.id,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  }
}

/** Sends a catalogue error: status, its headers, the request id and the JSON body. */
export function sendError(reply: FastifyReply, err: KeygateError): FastifyReply {
  return reply
    .code(err.statusCode)
    .headers({ ...errorHeaders(reply), ...err.headers })
    .send(err.toJSON())
}

/**
 * Answers any error with its catalogue error. Client errors are logged by code only (never with the
 * framework's message, which may quote the request); server errors with their stack. It is the error
 * handler of every component and their `frameworkErrors` (what Fastify meets before routing: a malformed
 * URL, a parameter past `maxParamLength`), so those get keygate's JSON and a request id too.
 */
export function answerError(err: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const kgErr = toKeygateError(err)
  if (kgErr.statusCode >= 500 && kgErr.code === 'KG_INTERNAL') {
    request.log.error({ err }, 'unhandled error')
  } else {
    request.log.info({ code: kgErr.code, status: kgErr.statusCode }, 'request refused')
  }
  return sendError(reply, kgErr)
}

/** What a listener answers for each error of Node's HTTP parser (see answerClientError). */
function parserErrorCode(code: string | undefined): ErrorCode {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return 'KG_REQUEST_TIMEOUT'
  if (code === 'HPE_HEADER_OVERFLOW') return 'KG_HEADERS_TOO_LARGE'
  return 'KG_MALFORMED_REQUEST'
}

/**
 * Fastify's `clientErrorHandler` for every listener: what is written on a connection whose request Node's
 * parser gave up on (no request object exists, so there is no reply to send it with). When no answer has
 * started on that connection, keygate's JSON error (`KG_REQUEST_TIMEOUT` 408, `KG_HEADERS_TOO_LARGE` 431,
 * otherwise `KG_MALFORMED_REQUEST` 400) with the headers of every error answer and the request id of the
 * answer in progress, or a new one. The connection is closed either way.
 */
export function answerClientError(
  this: FastifyInstance,
  err: Error & { code?: string },
  socket: Socket,
): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const inFlight = (socket as { _httpMessage?: ServerResponse | null })._httpMessage
  if (socket.writable && !inFlight?.headersSent) {
    const error = new KeygateError(parserErrorCode(err.code))
    const given = inFlight?.getHeader('x-request-id')
    const id = typeof given === 'string' ? given : randomUUID()
    const body = JSON.stringify(error.toJSON())
    socket.write(
      `HTTP/1.1 ${error.statusCode} ${STATUS_CODES[error.statusCode]}\r\nx-request-id: ${id}\r\n` +
        'cache-control: no-store\r\nx-content-type-options: nosniff\r\n' +
        `content-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
        `connection: close\r\n\r\n${body}`,
    )
  }
  this.log.debug({ code: err.code }, 'client error')
  socket.destroy(err)
}

/** Installs the error and not-found handlers every component uses (see answerError). */
export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler(answerError)
  app.setNotFoundHandler((_request, reply) => sendError(reply, new KeygateError('KG_NOT_FOUND')))
}
