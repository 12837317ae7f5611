/**
 * What tabs of one origin tell each other over a BroadcastChannel: fresh tokens (after a login or a refresh,
 * so that only one tab refreshes and the others take its result) and logouts (so every tab logs out at once).
 *
 * The access token does cross tabs here. A BroadcastChannel only reaches pages of the same origin and keeps
 * nothing once delivered; anything that can listen to it (a script of the origin) could as well call
 * `/auth/refresh` itself with the cookie and the readable CSRF token, so sharing it exposes nothing new.
 */
import type { TabChannelPort } from './runtime.js'

/** Why a session ended, as the `logout` event says. */
export type LogoutReason =
  /** `logout()` in this or another tab. */
  | 'logout'
  /** `logoutAll()` in this or another tab. */
  | 'logout-all'
  /** The issuer refused a refresh: the session expired or was revoked (an admin, logout-all elsewhere, reuse). */
  | 'session-ended'
  /** There was no live session to restore on page load. */
  | 'no-session'

export interface TokensMessage {
  type: 'tokens'
  accessToken: string
  /** When the access token expires, ms since the epoch (tabs share the clock). */
  expiresAt: number
  /** The token's whole lifetime, ms (sets when to refresh it). */
  lifetimeMs: number
  csrfToken: string
  /** When the sending tab received the token, ms since the epoch. */
  issuedAt: number
  /** A new login rather than a refresh: another user may have logged in. */
  login: boolean
}

export interface LogoutMessage {
  type: 'logout'
  reason: LogoutReason
  /** When the sending tab ended the session, ms since the epoch. */
  at: number
}

export type TabMessage = TokensMessage | LogoutMessage

const REASONS: readonly string[] = ['logout', 'logout-all', 'session-ended', 'no-session']

/** The message if `data` is a well-formed one, else undefined (a page of the origin may post anything). */
export function parseTabMessage(data: unknown): TabMessage | undefined {
  if (typeof data !== 'object' || data === null) return undefined
  const m = data as Record<string, unknown>
  const isTime = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v >= 0
  if (
    m.type === 'tokens' &&
    typeof m.accessToken === 'string' &&
    m.accessToken !== '' &&
    typeof m.csrfToken === 'string' &&
    isTime(m.expiresAt) &&
    isTime(m.lifetimeMs) &&
    isTime(m.issuedAt) &&
    typeof m.login === 'boolean'
  ) {
    return {
      type: 'tokens',
      accessToken: m.accessToken,
      csrfToken: m.csrfToken,
      expiresAt: m.expiresAt as number,
      lifetimeMs: m.lifetimeMs as number,
      issuedAt: m.issuedAt as number,
      login: m.login,
    }
  }
  if (m.type === 'logout' && typeof m.reason === 'string' && REASONS.includes(m.reason) && isTime(m.at)) {
    return { type: 'logout', reason: m.reason as LogoutReason, at: m.at as number }
  }
  return undefined
}

/** The channel, or a silent stand-in where BroadcastChannel is missing (then each tab is on its own). */
export class TabChannel {
  readonly #port: TabChannelPort | undefined

  constructor(
    open: ((name: string) => TabChannelPort) | undefined,
    name: string,
    onMessage: (m: TabMessage) => void,
  ) {
    this.#port = open?.(name)
    this.#port?.addEventListener('message', (event) => {
      const message = parseTabMessage(event.data)
      if (message) onMessage(message)
    })
  }

  /** Tells every other tab (a BroadcastChannel never delivers to its sender). */
  post(message: TabMessage): void {
    this.#port?.postMessage(message)
  }

  close(): void {
    this.#port?.close()
  }
}
