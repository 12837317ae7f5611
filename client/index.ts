/**
 * keygate's browser client: the access token in memory only, the refresh token in the issuer's HttpOnly
 * cookie, silent refresh, one refreshing tab at a time, logout in every tab. See docs/client.md.
 */
export {
  AUTH_REQUEST_TIMEOUT_MS,
  DEFAULT_REFRESH_AHEAD_MS,
  KeygateClient,
  type KeygateClientOptions,
  type LoginMethod,
  type LoginMethods,
  REFRESH_RETRY_MS,
  type SessionEvent,
  type SessionStatus,
} from './keygate-client.js'
export { CSRF_COOKIE, CSRF_HEADER, type CsrfTokenStore, csrfCookieStore } from './csrf-token.js'
export { KeygateHttpError, KeygateLoggedOutError } from './errors.js'
export type { ClientRuntime, LockRequester, TabChannelPort } from './runtime.js'
export type { LogoutReason } from './tab-channel.js'
