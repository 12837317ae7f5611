/**
 * The errors the verification plugin answers with, and keygate's one error class. A code is stable: clients
 * and dashboards may match on it. `error` is the RFC 6749/6750 error name where one exists, otherwise a short
 * snake-case class; `status` the HTTP status; failed authentication carries its RFC 6750 `WWW-Authenticate`
 * challenge in `headers`.
 *
 * An application adds its own codes with `defineErrors` and names them to TypeScript by merging into
 * `ErrorCatalogue` (keygate's lib/errors.ts does, for every other code keygate answers with), so one class
 * and one `instanceof` cover the plugin's errors and the application's.
 */

export interface ErrorSpec {
  readonly status: number
  readonly error: string
  readonly message: string
}

/** The codes the plugin itself answers with. */
export const AUTH_ERRORS = {
  KG_INVALID_REQUEST: { status: 400, error: 'invalid_request', message: 'The request is invalid' },
  KG_TOKEN_MISSING: { status: 401, error: 'unauthorized', message: 'Authentication is required' },
  KG_TOKEN_MULTIPLE: {
    status: 400,
    error: 'invalid_request',
    message: 'The request carries more than one access token',
  },
  KG_TOKEN_IN_QUERY: {
    status: 400,
    error: 'invalid_request',
    message: 'Access tokens are not accepted in the query string; use the Authorization header',
  },
  KG_TOKEN_MALFORMED: { status: 401, error: 'invalid_token', message: 'The access token is malformed' },
  KG_TOKEN_TOO_LARGE: { status: 401, error: 'invalid_token', message: 'The access token is too large' },
  KG_TOKEN_ALG_NOT_ALLOWED: {
    status: 401,
    error: 'invalid_token',
    message: 'The token signing algorithm is not allowed',
  },
  KG_TOKEN_TYPE_INVALID: { status: 401, error: 'invalid_token', message: 'The token type is not accepted' },
  KG_TOKEN_ISSUER_UNKNOWN: {
    status: 401,
    error: 'invalid_token',
    message: 'The token issuer is not trusted',
  },
  KG_TOKEN_KEY_UNKNOWN: {
    status: 401,
    error: 'invalid_token',
    message: 'The token was signed with an unknown key',
  },
  KG_TOKEN_SIGNATURE_INVALID: {
    status: 401,
    error: 'invalid_token',
    message: 'The token signature is invalid',
  },
  KG_TOKEN_EXPIRED: { status: 401, error: 'invalid_token', message: 'The access token expired' },
  KG_TOKEN_NOT_YET_VALID: {
    status: 401,
    error: 'invalid_token',
    message: 'The access token is not yet valid',
  },
  KG_TOKEN_AUDIENCE_INVALID: {
    status: 401,
    error: 'invalid_token',
    message: 'The access token is not meant for this audience',
  },
  KG_TOKEN_CLAIM_INVALID: {
    status: 401,
    error: 'invalid_token',
    message: 'A required token claim is missing or invalid',
  },
  KG_TOKEN_CRIT_UNSUPPORTED: {
    status: 401,
    error: 'invalid_token',
    message: 'The token names a critical header parameter that is not understood',
  },
  KG_TOKEN_REVOKED: { status: 401, error: 'invalid_token', message: 'The access token was revoked' },
  KG_KEYS_STALE: {
    status: 503,
    error: 'temporarily_unavailable',
    message: "The issuer's signing keys could not be refreshed; tokens cannot be verified",
  },
  KG_REVOCATION_FEED_STALE: {
    status: 503,
    error: 'temporarily_unavailable',
    message: 'The revocation feed is unreachable; this route refuses requests until it recovers',
  },
  KG_INSUFFICIENT_SCOPE: {
    status: 403,
    error: 'insufficient_scope',
    message: 'The access token lacks a required role or scope',
  },
  KG_TOKEN_ISSUER_NOT_ACCEPTED: {
    status: 403,
    error: 'insufficient_scope',
    message: "The route does not accept tokens of this token's issuer",
  },
  KG_ASSERTION_INVALID: {
    status: 401,
    error: 'invalid_token',
    message: 'The forwarded identity assertion is invalid',
  },
} as const satisfies Record<string, ErrorSpec>

/**
 * Every code a KeygateError may carry: the plugin's, plus those an application declares by merging into this
 * interface (`declare module '@keygate/fastify-auth' { interface ErrorCatalogue extends … {} }`) beside its
 * `defineErrors` call.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- an interface, so applications can merge codes into it
export interface ErrorCatalogue extends Record<keyof typeof AUTH_ERRORS, ErrorSpec> {}

export type ErrorCode = keyof ErrorCatalogue & string

/** The specs of every defined code: the plugin's, then each application's `defineErrors`. */
const catalogue = new Map<string, ErrorSpec>(Object.entries(AUTH_ERRORS))

/**
 * Makes `errors` codes a KeygateError can carry, and returns them as given (keep the result as the
 * application's catalogue). A code defined twice with different specs is a programming error.
 * @example
 * export const ERRORS = defineErrors({ APP_NOT_FOUND: { status: 404, error: 'not_found', message: 'No such thing' } })
 * declare module '@keygate/fastify-auth' {
 *   interface ErrorCatalogue extends Record<keyof typeof ERRORS, ErrorSpec> {}
 * }
 */
export function defineErrors<const C extends Record<string, ErrorSpec>>(errors: C): C {
  for (const [code, spec] of Object.entries(errors)) {
    const defined = catalogue.get(code)
    if (defined !== undefined && defined !== spec) {
      throw new Error(`@keygate/fastify-auth: error code ${code} is already defined`)
    }
    catalogue.set(code, spec)
  }
  return errors
}

export interface KeygateErrorOptions {
  /** Replaces the catalogue message; must never contain a token, a secret or client input verbatim. */
  message?: string
  /** Response headers that belong to this error (`WWW-Authenticate`, `Retry-After`). */
  headers?: Record<string, string>
  /** Extra JSON fields for the body (e.g. `{ claim: 'aud' }`). Never secrets. */
  details?: Record<string, unknown>
  cause?: unknown
}

/** An error with a stable code from the catalogue (see defineErrors), its HTTP status and the headers it must be answered with. */
export class KeygateError extends Error {
  readonly code: ErrorCode
  readonly statusCode: number
  readonly error: string
  readonly headers: Record<string, string>
  readonly details: Record<string, unknown> | undefined

  constructor(code: ErrorCode, options: KeygateErrorOptions = {}) {
    const spec = catalogue.get(code)
    if (spec === undefined) throw new TypeError(`@keygate/fastify-auth: ${code} is not a defined error code`)
    super(options.message ?? spec.message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'KeygateError'
    this.code = code
    this.statusCode = spec.status
    this.error = spec.error
    this.headers = options.headers ?? {}
    this.details = options.details
  }

  /** The JSON body every keygate component answers errors with. */
  toJSON(): Record<string, unknown> {
    return { error: this.error, code: this.code, message: this.message, ...this.details }
  }
}
