/**
 * Where the client finds the session's CSRF token after a page load. The issuer hands it over in the login
 * and refresh answers and also sets it in the cookie `kg_csrf`, which is deliberately readable by scripts
 * (not HttpOnly): a CSRF token only proves that the request came from a page of the gateway's origin, it is
 * worthless without the HttpOnly refresh cookie, and a script able to read it could call the API anyway.
 */

// The names below are the one definition of the CSRF contract between the issuer and browsers: the issuer
// imports them from here (client/ cannot import lib/ or services/: it is built and shipped on its own), so
// this module stays free of imports and of browser APIs.

/** The readable cookie the issuer sets beside the HttpOnly refresh cookie. */
export const CSRF_COOKIE = 'kg_csrf'
/** The request header that carries the CSRF token on refresh and logout (double submit). */
export const CSRF_HEADER = 'x-csrf-token'

/** A place the CSRF token survives a reload in. */
export interface CsrfTokenStore {
  /** The current session's CSRF token, or null when there is none. */
  read(): string | null
  /** Called with the token after each login or refresh, and with null after a logout. */
  write(token: string | null): void
}

/**
 * The issuer's `kg_csrf` cookie, read from `document.cookie` (the default). It only works for pages served
 * from the gateway's own origin: a page of another origin cannot read that cookie (see docs/client.md).
 */
export function csrfCookieStore(readCookies: () => string): CsrfTokenStore {
  return {
    read: () => cookieValue(readCookies(), CSRF_COOKIE),
    // The issuer sets and clears the cookie itself.
    write: () => undefined,
  }
}

/** The value of cookie `name` in a `document.cookie` string, or null. */
export function cookieValue(cookies: string, name: string): string | null {
  for (const pair of cookies.split(';')) {
    const eq = pair.indexOf('=')
    if (eq < 0 || pair.slice(0, eq).trim() !== name) continue
    const raw = pair.slice(eq + 1).trim()
    try {
      return raw === '' ? null : decodeURIComponent(raw)
    } catch {
      return null
    }
  }
  return null
}
