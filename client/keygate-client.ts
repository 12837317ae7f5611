/**
 * KeygateClient: a browser session with a keygate gateway. The access token lives in a private field of
 * this object and nowhere else (no localStorage, no sessionStorage, no cookie a script can read); the refresh
 * token lives in the issuer's HttpOnly cookie and never passes through JavaScript at all.
 */
import { CSRF_HEADER, type CsrfTokenStore, csrfCookieStore } from './csrf-token.js'
import { KeygateHttpError, KeygateLoggedOutError } from './errors.js'
import { browserRuntime, type ClientRuntime } from './runtime.js'
import { SessionLock } from './session-lock.js'
import { type LogoutReason, TabChannel, type TabMessage, type TokensMessage } from './tab-channel.js'

/** Refresh at most this long before the access token expires, in ms (30 s); a quarter of a shorter lifetime. */
export const DEFAULT_REFRESH_AHEAD_MS = 30_000
/** After a refresh failed for a passing reason (network, 5xx, 429), the next try, in ms (5 s). */
export const REFRESH_RETRY_MS = 5_000
/** How long a login, refresh or logout request may take before it is abandoned, in ms (15 s). */
export const AUTH_REQUEST_TIMEOUT_MS = 15_000

/** What whole-second expiry times may round away, in ms. */
const WHOLE_SECOND_ROUNDING_MS = 1000

/** The ways of logging in an issuer may offer (its LOGIN_METHODS). */
export type LoginMethod = 'password' | 'email-code' | 'external'
const LOGIN_METHOD_NAMES: readonly LoginMethod[] = ['password', 'email-code', 'external']

/** What `loginMethods()` answers. */
export interface LoginMethods {
  methods: LoginMethod[]
  /** Whether password registration (`register`) is open. */
  registration: 'open' | 'closed'
  /** The external issuers whose tokens `loginWithExternalToken` accepts. */
  externalIssuers: string[]
}

/** `unknown` until the first restore or login has an answer. */
export type SessionStatus = 'unknown' | 'logged-in' | 'logged-out'

export type SessionEvent =
  /** A session started: a login, a restore on page load, or either of those in another tab. */
  | { type: 'login'; fromOtherTab: boolean }
  /** The access token was renewed, silently, here or in another tab. */
  | { type: 'refresh'; fromOtherTab: boolean; expiresAt: number }
  /** The session is over; calls now throw KeygateLoggedOutError until the next login. */
  | { type: 'logout'; reason: LogoutReason; fromOtherTab: boolean }

export interface KeygateClientOptions {
  /**
   * The gateway, as an origin with an optional path (`https://api.example.com`). Default: the page's own
   * origin, which is the simplest and safest deployment (see docs/client.md for another origin).
   */
  gatewayUrl?: string
  /** Refresh this long before expiry, in ms. Default: a quarter of the token's lifetime, at most 30 s. */
  refreshAheadMs?: number
  /** Where the CSRF token is found after a reload. Default: the issuer's readable `kg_csrf` cookie. */
  csrfTokenStore?: CsrfTokenStore
  /** Browser facilities, replaceable for tests. */
  runtime?: Partial<ClientRuntime>
}

interface AccessToken {
  value: string
  /** ms since the epoch, on this browser's clock (from `expires_in`, so server clock skew does not matter). */
  expiresAt: number
  lifetimeMs: number
  /** When it was received, ms since the epoch. */
  issuedAt: number
}

interface TokenAnswer {
  access_token: string
  expires_in: number
  csrf_token: string
}

/** How a refresh decides, once it holds the lock, whether there is still anything to do. */
interface RefreshIntent {
  /** Skip when the token held by then is not about to expire (another tab refreshed meanwhile). */
  skipIfFresh: boolean
  /** A token the server refused: skip only if the token held by then is another, fresh one. */
  refused?: string
}

/**
 * A logged-in session with a keygate gateway, shared by every tab of the origin.
 *
 * @example
 * const keygate = new KeygateClient()
 * keygate.subscribe((e) => { if (e.type === 'logout') showLoginForm() })
 * if (!(await keygate.restore())) await keygate.login(email, password)
 * const orders = await (await keygate.fetch('/api/orders')).json()
 * await keygate.logout() // every tab of the origin is logged out
 */
export class KeygateClient {
  readonly #runtime: ClientRuntime
  readonly #gateway: URL
  readonly #refreshAheadMs: number | undefined
  readonly #csrfStore: CsrfTokenStore
  readonly #lock: SessionLock
  readonly #channel: TabChannel
  readonly #stopWatchingVisibility: () => void
  readonly #listeners = new Set<(event: SessionEvent) => void>()

  #status: SessionStatus = 'unknown'
  #token: AccessToken | null = null
  #csrfToken: string | null = null
  /** When the last session we know of ended; older token messages from other tabs are stale. */
  #endedAt = 0
  #refreshTimer: unknown = undefined
  #restoring: Promise<boolean> | null = null

  constructor(options: KeygateClientOptions = {}) {
    this.#runtime = { ...browserRuntime(), ...options.runtime }
    const base = options.gatewayUrl ?? this.#runtime.pageUrl()
    if (base === undefined) throw new TypeError('KeygateClient: gatewayUrl is required outside a page')
    this.#gateway = new URL(base.endsWith('/') ? base : `${base}/`)
    if (options.gatewayUrl === undefined) this.#gateway.pathname = '/'
    this.#gateway.search = ''
    this.#gateway.hash = ''
    if (options.refreshAheadMs !== undefined && !(options.refreshAheadMs >= 0)) {
      throw new RangeError('KeygateClient: refreshAheadMs must be a number of milliseconds ≥ 0')
    }
    this.#refreshAheadMs = options.refreshAheadMs
    this.#csrfStore = options.csrfTokenStore ?? csrfCookieStore(() => this.#runtime.cookies())
    const scope = `keygate:${this.#gateway.href}`
    this.#lock = new SessionLock(scope, this.#runtime.locks)
    this.#channel = new TabChannel(this.#runtime.openChannel, scope, (m) => this.#onTabMessage(m))
    // Timers of hidden tabs are throttled (to once a minute in Chromium): catch up when the tab shows again.
    this.#stopWatchingVisibility = this.#runtime.onVisible(() => {
      if (this.#status === 'logged-in' && this.#expiringSoon()) this.#refreshInBackground()
    })
  }

  /** Where the session stands. */
  get status(): SessionStatus {
    return this.#status
  }

  /** When the current access token expires (ms since the epoch), or null without one. */
  get expiresAt(): number | null {
    return this.#token?.expiresAt ?? null
  }

  /** Whether refreshes are serialised across tabs (Web Locks) or only within this tab. */
  get crossTabLocking(): boolean {
    return this.#lock.crossTab
  }

  /** Calls `listener` on every session event until the returned function is called. */
  subscribe(listener: (event: SessionEvent) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /**
   * On page load: resumes the session the HttpOnly cookie still holds, with one refresh (or the token
   * another tab just got). Resolves true when logged in, false when there is no session.
   * @throws when the gateway cannot be reached (the status stays `unknown`; try again later)
   */
  restore(): Promise<boolean> {
    if (this.#status !== 'unknown') return Promise.resolve(this.#status === 'logged-in')
    this.#restoring ??= this.#refresh({ skipIfFresh: true })
      .then(
        () => this.#status === 'logged-in',
        (err: unknown) => {
          if (err instanceof KeygateLoggedOutError) return false
          throw err
        },
      )
      .finally(() => (this.#restoring = null))
    return this.#restoring
  }

  /**
   * Creates an account (it does not log in). The issuer answers the same whether or not the e-mail already
   * had an account (so nobody learns which do): the e-mail as the issuer normalised it.
   */
  async register(email: string, password: string): Promise<{ email: string }> {
    const response = await this.#authRequest('auth/register', { email, password })
    if (!response.ok) throw await KeygateHttpError.from(response)
    return (await response.json()) as { email: string }
  }

  /** Logs in with a password; every other tab of the origin joins the new session. */
  login(email: string, password: string): Promise<void> {
    return this.#loginWith('auth/login', { email, password })
  }

  /**
   * What the issuer offers (its LOGIN_METHODS and REGISTRATION), so a login page shows only that.
   * @example
   * const { methods } = await keygate.loginMethods()
   * passwordForm.hidden = !methods.includes('password')
   */
  async loginMethods(): Promise<LoginMethods> {
    const response = await this.#runtime.fetch(this.#gatewayUrl('auth/methods').href, {
      credentials: 'omit',
      signal: AbortSignal.timeout(AUTH_REQUEST_TIMEOUT_MS),
    })
    if (!response.ok) throw await KeygateHttpError.from(response)
    const body = (await response.json()) as {
      methods?: unknown
      registration?: unknown
      external_issuers?: unknown
    }
    const strings = (v: unknown) =>
      Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []
    return {
      methods: strings(body.methods).filter((m): m is LoginMethod =>
        LOGIN_METHOD_NAMES.includes(m as LoginMethod),
      ),
      registration: body.registration === 'open' ? 'open' : 'closed',
      externalIssuers: strings(body.external_issuers),
    }
  }

  /**
   * Asks for a one-time code by e-mail. The answer is the same whether or not the address has an account
   * (nobody learns which do): the e-mail as the issuer normalised it, and how long the code lives (ms).
   * @throws KeygateHttpError `KG_LOGIN_METHOD_DISABLED`, `KG_RATE_LIMITED`, `KG_INVALID_REQUEST`
   */
  async requestEmailCode(email: string): Promise<{ email: string; expiresInMs: number }> {
    const response = await this.#authRequest('auth/email-code', { email })
    if (!response.ok) throw await KeygateHttpError.from(response)
    const body = (await response.json()) as { email: string; expires_in: number }
    return { email: body.email, expiresInMs: body.expires_in * 1000 }
  }

  /** Logs in with the code from the e-mail; every other tab of the origin joins the new session. */
  loginWithEmailCode(email: string, code: string): Promise<void> {
    return this.#loginWith('auth/email-code/verify', { email, code: code.replace(/\s+/g, '') })
  }

  /**
   * Exchanges a token of a trusted external identity provider (the issuer's EXTERNAL_ISSUERS) for a keygate
   * session, which then lives and refreshes like any other; the external token is not kept.
   */
  loginWithExternalToken(token: string): Promise<void> {
    return this.#loginWith('auth/external', { token })
  }

  async #loginWith(path: string, body: unknown): Promise<void> {
    await this.#lock.run(async () => {
      const sentAt = this.#runtime.now()
      const response = await this.#authRequest(path, body)
      if (!response.ok) throw await KeygateHttpError.from(response)
      this.#accept(await tokenAnswer(response), { login: true, sentAt })
    })
  }

  /**
   * `fetch` through the gateway with the access token attached. A token about to expire is refreshed first;
   * a 401 `invalid_token` answer is followed by one refresh and one retry. Only gateway URLs are accepted:
   * the token is never sent anywhere else.
   * @throws KeygateLoggedOutError when there is no session, or it ended on the way
   */
  async fetch(path: string | URL, init: RequestInit = {}): Promise<Response> {
    const url = this.#gatewayUrl(path)
    let token = await this.#usableToken()
    let response = await this.#send(url, init, token)
    if (response.status === 401 && isInvalidToken(response) && canResend(init)) {
      await this.#refresh({ skipIfFresh: true, refused: token })
      token = this.#currentToken()
      response = await this.#send(url, init, token)
    }
    return response
  }

  /** Renews the access token now, whatever its age (a silent refresh does this on its own). */
  async refresh(): Promise<void> {
    if (this.#status !== 'logged-in') throw new KeygateLoggedOutError()
    await this.#refresh({ skipIfFresh: false })
  }

  /**
   * Ends this session, in every tab of the origin at once and then on the server. The tabs log out even if
   * the server cannot be reached; the error is thrown afterwards so that the app can say so.
   */
  async logout(): Promise<void> {
    await this.#lock.run(async () => {
      const csrfToken = this.#currentCsrfToken()
      // Tokens leave memory before the request: nothing is gained by keeping them while it travels.
      this.#end('logout', { broadcast: true, fromOtherTab: false })
      if (csrfToken === null) return
      const response = await this.#authRequest('auth/logout', undefined, csrfToken)
      if (!response.ok) throw await KeygateHttpError.from(response)
    })
  }

  /** Ends every session of the user, on every device; this origin's tabs log out at once. */
  async logoutAll(): Promise<void> {
    const send = (token: string) =>
      this.#lock.run(async () => {
        const response = await this.#send(
          this.#gatewayUrl('auth/logout-all'),
          { method: 'POST' },
          token,
          true,
        )
        if (response.ok) this.#end('logout-all', { broadcast: true, fromOtherTab: false })
        return response
      })
    let token = await this.#usableToken()
    let response = await send(token)
    if (response.status === 401 && isInvalidToken(response)) {
      await this.#refresh({ skipIfFresh: true, refused: token })
      token = this.#currentToken()
      response = await send(token)
    }
    if (!response.ok) throw await KeygateHttpError.from(response)
  }

  /** Stops timers and leaves the tab channel (for apps that tear the client down). */
  close(): void {
    this.#runtime.clearTimeout(this.#refreshTimer)
    this.#stopWatchingVisibility()
    this.#channel.close()
    this.#listeners.clear()
  }

  // --- the token ---

  /** A token to send now: refreshed first when about to expire. */
  async #usableToken(): Promise<string> {
    if (this.#status === 'unknown') await this.restore()
    if (this.#status !== 'logged-in') throw new KeygateLoggedOutError()
    if (this.#expiringSoon()) {
      try {
        await this.#refresh({ skipIfFresh: true })
      } catch (err) {
        // A passing failure: a token that is still valid is worth a try.
        if (
          err instanceof KeygateLoggedOutError ||
          !this.#token ||
          this.#token.expiresAt <= this.#runtime.now()
        )
          throw err
      }
    }
    return this.#currentToken()
  }

  #currentToken(): string {
    if (this.#status !== 'logged-in' || !this.#token) throw new KeygateLoggedOutError()
    return this.#token.value
  }

  #aheadMs(token: AccessToken): number {
    return this.#refreshAheadMs ?? Math.min(DEFAULT_REFRESH_AHEAD_MS, token.lifetimeMs / 4)
  }

  #expiringSoon(): boolean {
    const token = this.#token
    return !token || token.expiresAt - this.#aheadMs(token) <= this.#runtime.now()
  }

  /**
   * A login or refresh answer. The expiry is counted on this browser's clock from when the request was sent
   * (the token cannot be older), less a second: `expires_in` and the token's `exp` are whole seconds, rounded
   * down, so the token may expire up to a second before `sent + expires_in`.
   */
  #accept(answer: TokenAnswer, how: { login: boolean; sentAt: number }): void {
    const lifetimeMs = Math.max(0, answer.expires_in * 1000 - WHOLE_SECOND_ROUNDING_MS)
    this.#adopt({
      type: 'tokens',
      accessToken: answer.access_token,
      expiresAt: how.sentAt + lifetimeMs,
      lifetimeMs,
      csrfToken: answer.csrf_token,
      issuedAt: this.#runtime.now(),
      login: how.login,
    })
  }

  #adopt(tokens: TokensMessage, fromOtherTab = false): void {
    const wasLoggedIn = this.#status === 'logged-in'
    this.#token = {
      value: tokens.accessToken,
      expiresAt: tokens.expiresAt,
      lifetimeMs: tokens.lifetimeMs,
      issuedAt: tokens.issuedAt,
    }
    this.#csrfToken = tokens.csrfToken
    this.#status = 'logged-in'
    if (!fromOtherTab) {
      this.#csrfStore.write(tokens.csrfToken)
      this.#channel.post(tokens)
    }
    this.#schedule()
    if (tokens.login || !wasLoggedIn) this.#emit({ type: 'login', fromOtherTab })
    else this.#emit({ type: 'refresh', fromOtherTab, expiresAt: tokens.expiresAt })
  }

  #end(reason: LogoutReason, how: { broadcast: boolean; fromOtherTab: boolean; at?: number }): void {
    const at = how.at ?? this.#runtime.now()
    this.#endedAt = Math.max(this.#endedAt, at)
    const wasLoggedOut = this.#status === 'logged-out'
    this.#token = null
    this.#csrfToken = null
    this.#status = 'logged-out'
    this.#runtime.clearTimeout(this.#refreshTimer)
    if (how.broadcast) {
      this.#csrfStore.write(null)
      this.#channel.post({ type: 'logout', reason, at })
    }
    if (!wasLoggedOut) this.#emit({ type: 'logout', reason, fromOtherTab: how.fromOtherTab })
  }

  #onTabMessage(message: TabMessage): void {
    if (message.type === 'logout') {
      // A logout from before this tab's token was issued ended an older session (messages and the lock are
      // not ordered with each other: a logout may arrive after the next login).
      if (this.#token && message.at < this.#token.issuedAt) return
      this.#end(message.reason, { broadcast: false, fromOtherTab: true, at: message.at })
      return
    }
    // A refresh that finished before a logout we heard of belongs to a dead session.
    if (message.issuedAt < this.#endedAt) return
    const current = this.#token
    if (!message.login && this.#status === 'logged-in' && current && message.expiresAt <= current.expiresAt)
      return
    this.#adopt(message, true)
  }

  // --- refreshing ---

  /** Schedules the silent refresh, a little randomly so that the tabs' timers do not all fire together. */
  #schedule(): void {
    this.#runtime.clearTimeout(this.#refreshTimer)
    const token = this.#token
    if (!token) return
    const ahead = this.#aheadMs(token)
    const spread = (ahead / 4) * this.#runtime.random()
    const delay = Math.max(0, token.expiresAt - ahead + spread - this.#runtime.now())
    this.#refreshTimer = this.#runtime.setTimeout(() => this.#refreshInBackground(), delay)
  }

  #refreshInBackground(): void {
    this.#refresh({ skipIfFresh: true }).catch((err: unknown) => {
      if (err instanceof KeygateLoggedOutError || this.#status !== 'logged-in') return
      // A passing failure (offline, the gateway restarting): try again soon; the token may still be good.
      this.#runtime.clearTimeout(this.#refreshTimer)
      this.#refreshTimer = this.#runtime.setTimeout(() => this.#refreshInBackground(), REFRESH_RETRY_MS)
    })
  }

  /**
   * Refreshes under the session lock. Callers in this tab and in other tabs queue behind it, and each one
   * looks again once it holds the lock: usually the refresh before it already did the work.
   */
  #refresh(intent: RefreshIntent): Promise<void> {
    return this.#lock.run(() => this.#refreshHoldingLock(intent))
  }

  async #refreshHoldingLock(intent: RefreshIntent): Promise<void> {
    if (this.#status === 'logged-out') throw new KeygateLoggedOutError()
    // While this tab waited for the lock another tab may have refreshed and told us (#onTabMessage).
    const token = this.#token
    if (intent.skipIfFresh && token && token.value !== intent.refused && !this.#expiringSoon()) return
    const ended = this.#status === 'unknown' ? 'no-session' : 'session-ended'
    const csrfToken = this.#currentCsrfToken()
    if (csrfToken === null) {
      this.#end(ended, { broadcast: false, fromOtherTab: false })
      throw new KeygateLoggedOutError()
    }
    const sentAt = this.#runtime.now()
    const response = await this.#authRequest('auth/refresh', undefined, csrfToken)
    if (response.ok) {
      this.#accept(await tokenAnswer(response), { login: false, sentAt })
      return
    }
    const error = await KeygateHttpError.from(response)
    // 401 (no, expired, revoked or reused refresh token) and 403 (CSRF, origin) will not get better by
    // retrying: the session is over. 429 and 5xx may.
    if (response.status === 401 || response.status === 403) {
      this.#end(ended, { broadcast: true, fromOtherTab: false })
      throw new KeygateLoggedOutError(`Logged out: ${error.message}`)
    }
    throw error
  }

  // --- requests ---

  /** The store's token (kept current by the issuer's cookie) before the in-memory copy (other origins). */
  #currentCsrfToken(): string | null {
    return this.#csrfStore.read() ?? this.#csrfToken
  }

  /** A gateway URL for `path`; refuses anything that would carry the token to another origin. */
  #gatewayUrl(path: string | URL): URL {
    // `/api/x` is taken relative to the gateway's path (`https://host/gw/` → `/gw/api/x`); `//host/x` is not.
    const rooted = typeof path === 'string' && path.startsWith('/') && !path.startsWith('//')
    const url = new URL(rooted ? path.slice(1) : path, this.#gateway)
    if (url.origin !== this.#gateway.origin) {
      throw new TypeError(`KeygateClient: refusing to send the access token to ${url.origin}`)
    }
    return url
  }

  #send(url: URL, init: RequestInit, token: string, withCookies = false): Promise<Response> {
    const headers = new Headers(init.headers)
    headers.set('authorization', `Bearer ${token}`)
    return this.#runtime.fetch(url.href, {
      ...init,
      headers,
      ...(withCookies ? { credentials: 'include' } : {}),
    })
  }

  /**
   * A request to the issuer's `/auth` routes. `credentials: 'include'` so that the cookies go along and
   * the answer's Set-Cookie is kept even when the gateway is another origin.
   */
  #authRequest(path: string, body?: unknown, csrfToken?: string): Promise<Response> {
    const headers = new Headers()
    if (body !== undefined) headers.set('content-type', 'application/json')
    if (csrfToken !== undefined) headers.set(CSRF_HEADER, csrfToken)
    return this.#runtime.fetch(this.#gatewayUrl(path).href, {
      method: 'POST',
      headers,
      credentials: 'include',
      cache: 'no-store',
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(AUTH_REQUEST_TIMEOUT_MS),
    })
  }

  #emit(event: SessionEvent): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(event)
      } catch (err) {
        // One broken listener must not keep the others (or the session logic) from running.
        console.error(err)
      }
    }
  }
}

/** RFC 6750: `WWW-Authenticate: Bearer …, error="invalid_token"` (exposed to scripts by the gateway's CORS). */
function isInvalidToken(response: Response): boolean {
  return /error="invalid_token"/.test(response.headers.get('www-authenticate') ?? '')
}

/** A stream body is spent by the first attempt; everything else fetch accepts can be sent twice. */
function canResend(init: RequestInit): boolean {
  return !(typeof ReadableStream === 'function' && init.body instanceof ReadableStream)
}

async function tokenAnswer(response: Response): Promise<TokenAnswer> {
  const body = (await response.json()) as Partial<TokenAnswer>
  if (
    typeof body.access_token !== 'string' ||
    typeof body.expires_in !== 'number' ||
    !(body.expires_in > 0) ||
    typeof body.csrf_token !== 'string'
  ) {
    throw new KeygateHttpError(response.status, '', 'The token answer is malformed')
  }
  return body as TokenAnswer
}
