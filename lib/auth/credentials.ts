/**
 * Finding the credentials a request carries: the `Authorization: Bearer` header (scheme case-insensitive,
 * RFC 7235), optionally an access-token cookie for browser clients, and a gateway assertion. A request that
 * carries a token more than one way, or one header twice, is ambiguous and refused; a query-string token is
 * refused outright (RFC 6750 §5.3: it ends up in logs and histories).
 */
import type { FastifyRequest } from 'fastify'
import { KeygateError } from '../errors.js'
import { ASSERTION_HEADER } from '../identity/constants.js'
import { sameSecret } from '../secrets.js'

export interface Credentials {
  token: string | undefined
  /** Where the token came from; a cookie token needs CSRF proof on unsafe methods. */
  tokenSource: 'header' | 'cookie' | undefined
  assertion: string | undefined
}

export interface AccessTokenCookie {
  /** Cookie holding the access token. */
  name: string
  /** Readable cookie the client echoes in `csrfHeader` (double submit). Default `kg_csrf`. */
  csrfCookie?: string
  /** Default `x-csrf-token`. */
  csrfHeader?: string
}

/** RFC 7235 token68, the only shape a bearer credential can take. */
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/** How many times a header appears: Node keeps only the first `Authorization`, so count the raw list. */
function countHeader(rawHeaders: string[], name: string): number {
  let n = 0
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const h = rawHeaders[i]!
    if (h.length === name.length && h.toLowerCase() === name) n++
  }
  return n
}

function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }
  return undefined
}

function bearerFrom(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined
  const value = authorization.trim()
  const space = value.indexOf(' ')
  const scheme = space === -1 ? value : value.slice(0, space)
  // Another scheme (Basic, DPoP…) is not a bearer token: the request simply has none.
  if (scheme.toLowerCase() !== 'bearer') {
    // …but `Bearer<TAB>token` and the like are a bearer credential spelt wrong (RFC 7235: one or more SP).
    if (/^bearer\s/i.test(scheme)) {
      throw new KeygateError('KG_INVALID_REQUEST', {
        message: 'The Authorization header is not a valid Bearer credential',
      })
    }
    return undefined
  }
  const credentials = space === -1 ? '' : value.slice(space + 1).trim()
  if (!TOKEN68.test(credentials)) {
    throw new KeygateError('KG_INVALID_REQUEST', {
      message: 'The Authorization header is not a valid Bearer credential',
    })
  }
  return credentials
}

/**
 * Extracts the credentials of a request, or throws a 400/403 KeygateError when they are ambiguous.
 * @example
 * const { token, assertion } = extractCredentials(request, undefined)
 */
export function extractCredentials(
  request: FastifyRequest,
  cookie: AccessTokenCookie | undefined,
): Credentials {
  const raw = request.raw.rawHeaders
  if (countHeader(raw, 'authorization') > 1) throw new KeygateError('KG_TOKEN_MULTIPLE')
  if (countHeader(raw, ASSERTION_HEADER) > 1) throw new KeygateError('KG_TOKEN_MULTIPLE')
  const query = request.query as Record<string, unknown> | undefined
  if (query && typeof query === 'object' && Object.hasOwn(query, 'access_token')) {
    throw new KeygateError('KG_TOKEN_IN_QUERY')
  }
  const assertionHeader = request.headers[ASSERTION_HEADER]
  const assertion =
    typeof assertionHeader === 'string' && assertionHeader.length > 0 ? assertionHeader : undefined

  const bearer = bearerFrom(request.headers.authorization)
  const fromCookie = cookie ? readCookie(request.headers.cookie, cookie.name) : undefined
  if (bearer !== undefined && fromCookie !== undefined) throw new KeygateError('KG_TOKEN_MULTIPLE')
  if (bearer !== undefined) return { token: bearer, tokenSource: 'header', assertion }
  if (fromCookie !== undefined && cookie) {
    if (!SAFE_METHODS.has(request.method)) requireCsrfProof(request, cookie)
    return { token: fromCookie, tokenSource: 'cookie', assertion }
  }
  return { token: undefined, tokenSource: undefined, assertion }
}

/** Double-submit CSRF proof for a cookie-borne token on an unsafe method. */
function requireCsrfProof(request: FastifyRequest, cookie: AccessTokenCookie): void {
  if (request.headers['sec-fetch-site'] === 'cross-site') throw new KeygateError('KG_CROSS_SITE')
  const expected = readCookie(request.headers.cookie, cookie.csrfCookie ?? 'kg_csrf')
  const given = request.headers[cookie.csrfHeader ?? 'x-csrf-token']
  if (!expected || typeof given !== 'string' || !sameSecret(given, expected))
    throw new KeygateError('KG_CSRF_FAILED')
}
