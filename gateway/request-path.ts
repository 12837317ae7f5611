/**
 * The path the gateway routes on and forwards: RFC 3986 normalised, so that a route's policy cannot be
 * sidestepped by spelling its path differently (`/api/%61dmin`, `/api/x/../admin`, `//api/admin`), and the
 * upstream receives the very path that was matched (no second interpretation downstream).
 */
import { KeygateError } from '../lib/errors.js'

/** Anything that may make a raw path differ from its normal form; most paths skip the slow path. */
const NEEDS_NORMALISING = /%|\/\.|\/\/|\\/

/** Percent-encoded unreserved characters (RFC 3986 §2.3), which mean the same decoded. */
const UNRESERVED = /^[A-Za-z0-9\-._~]$/

/** A request target split into its normalised path and its raw query (with the `?`, or empty). */
export interface RequestPath {
  path: string
  query: string
}

/**
 * Splits a request URL into a normalised path and its query. Normalising decodes percent-encoded unreserved
 * characters, upper-cases other escapes (`%2f` → `%2F`, kept encoded: never a segment separator), merges
 * repeated slashes and resolves `.` and `..` segments. A backslash or a malformed escape is refused (400),
 * since servers disagree on what they mean.
 * @example
 * parseRequestPath('/api/./x/../%61dmin?q=1') // { path: '/api/admin', query: '?q=1' }
 */
export function parseRequestPath(url: string): RequestPath {
  const q = url.indexOf('?')
  const raw = q === -1 ? url : url.slice(0, q)
  const query = q === -1 ? '' : url.slice(q)
  if (raw.charCodeAt(0) !== 47 /* / */) throw invalidPath()
  if (!NEEDS_NORMALISING.test(raw)) return { path: raw, query }
  return { path: normalise(raw), query }
}

function normalise(raw: string): string {
  if (raw.includes('\\')) throw invalidPath()
  const out: string[] = []
  const segments = raw.split('/')
  const last = segments.length - 1
  for (let i = 1; i <= last; i++) {
    const segment = decodeUnreserved(segments[i]!)
    if (segment === '..') {
      out.pop()
      if (i === last) out.push('')
    } else if (segment === '.') {
      if (i === last) out.push('')
    } else if (segment !== '' || i === last) {
      out.push(segment)
    }
  }
  return `/${out.join('/')}`
}

function decodeUnreserved(segment: string): string {
  if (!segment.includes('%')) return segment
  return segment.replace(/%(.{0,2})/g, (_match, hex: string) => {
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) throw invalidPath()
    const char = String.fromCharCode(Number.parseInt(hex, 16))
    return UNRESERVED.test(char) ? char : `%${hex.toUpperCase()}`
  })
}

function invalidPath(): KeygateError {
  return new KeygateError('KG_INVALID_REQUEST', { message: 'The request path is invalid' })
}
