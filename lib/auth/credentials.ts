/**
 * Finding the credentials a request carries: the `Authorization: Bearer` header (scheme case-insensitive,
 * RFC 7235) and a gateway assertion. A request that carries one of them twice is ambiguous and refused; a
 * query-string token is refused outright (RFC 6750 §5.3: it ends up in logs and histories). Cookies are never
 * read: a browser client holds its access token in memory and sends it in the header.
 */
import type { FastifyRequest } from 'fastify'
import { KeygateError } from './errors.js'
import { ASSERTION_HEADER } from './assertion.js'

export interface Credentials {
  /** The bearer token of the `Authorization` header. */
  token: string | undefined
  /** The gateway's identity assertion. */
  assertion: string | undefined
}

/** RFC 7235 token68, the only shape a bearer credential can take. */
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/

/** How many times a header appears: Node keeps only the first `Authorization`, so count the raw list. */
function countHeader(rawHeaders: string[], name: string): number {
  let n = 0
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const h = rawHeaders[i]!
    if (h.length === name.length && h.toLowerCase() === name) n++
  }
  return n
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
 * Extracts the credentials of a request, or throws a 400 KeygateError when they are ambiguous.
 * @example
 * const { token, assertion } = extractCredentials(request)
 */
export function extractCredentials(request: FastifyRequest): Credentials {
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
  return { token: bearerFrom(request.headers.authorization), assertion }
}
