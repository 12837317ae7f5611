/**
 * The cookies of a browser session, and the checks that keep other sites from using them.
 *
 * The refresh token travels only in `kg_refresh`: HttpOnly, Secure, SameSite=Strict, no Domain, and
 * `Path=/auth`. We chose path scoping over the `__Host-` prefix because `__Host-` forces `Path=/`, which
 * would send the refresh token with every API call through the gateway; `/auth` keeps it off every other
 * route. The CSRF token is in `kg_csrf`, readable by the page (not HttpOnly) so it can echo it back in the
 * `x-csrf-token` header — something a cross-site form or image cannot do.
 */
import type { CookieSerializeOptions } from '@fastify/cookie'
import type { FastifyReply, FastifyRequest } from 'fastify'
// The CSRF names are defined once, by the browser client that reads the cookie and sends the header.
import { CSRF_COOKIE, CSRF_HEADER } from '@keygate/client/csrf-token'
import { KeygateError } from '../../lib/errors.js'

export const REFRESH_COOKIE = 'kg_refresh'
/** The path the refresh cookie is scoped to: the issuer's auth routes (as served through the gateway too). */
export const REFRESH_COOKIE_PATH = '/auth'

const REFRESH_COOKIE_OPTIONS: CookieSerializeOptions = {
  httpOnly: true,
  secure: true,
  sameSite: 'strict',
  path: REFRESH_COOKIE_PATH,
}
const CSRF_COOKIE_OPTIONS: CookieSerializeOptions = {
  httpOnly: false,
  secure: true,
  sameSite: 'strict',
  path: '/',
}

/** Sets both cookies for a session that ends at `absoluteExpiresAt` (ms). */
export function setSessionCookies(
  reply: FastifyReply,
  tokens: { refreshToken: string; csrfToken: string; absoluteExpiresAt: number },
  now: number,
): void {
  const maxAge = Math.max(0, Math.floor((tokens.absoluteExpiresAt - now) / 1000))
  reply.setCookie(REFRESH_COOKIE, tokens.refreshToken, { ...REFRESH_COOKIE_OPTIONS, maxAge })
  reply.setCookie(CSRF_COOKIE, tokens.csrfToken, { ...CSRF_COOKIE_OPTIONS, maxAge })
}

/** Expires both cookies. */
export function clearSessionCookies(reply: FastifyReply): void {
  reply.clearCookie(REFRESH_COOKIE, REFRESH_COOKIE_OPTIONS)
  reply.clearCookie(CSRF_COOKIE, CSRF_COOKIE_OPTIONS)
}

/** The presented CSRF token, if exactly one was sent. */
export function csrfHeader(request: FastifyRequest): string | undefined {
  const value = request.headers[CSRF_HEADER]
  return typeof value === 'string' && value.length > 0 ? value : undefined
}

/**
 * Refuses (403 KG_CROSS_SITE) a request the browser marks as cross-site, or whose `Origin` is neither the
 * request's own (scheme and host as seen through trusted proxies) nor an allowed one.
 */
export function refuseCrossSite(request: FastifyRequest, allowedOrigins: ReadonlySet<string>): void {
  if (request.headers['sec-fetch-site'] === 'cross-site') {
    throw new KeygateError('KG_CROSS_SITE')
  }
  const origin = request.headers.origin
  if (origin === undefined) return
  const own = `${request.protocol}://${request.host}`.toLowerCase()
  if (origin.toLowerCase() === own || allowedOrigins.has(origin)) return
  throw new KeygateError('KG_CROSS_SITE')
}
