/**
 * The revocation events the issuer records. Each stays in the feed until every token it can affect has
 * expired: the access-token lifetime plus the clock skew verifiers allow, counted from the revocation.
 */
import type { RevocationEvent } from './store/types.js'

/** Builds revocation events with the right expiry, and tells this process's listeners once they are stored. */
export class RevocationEvents {
  readonly #keepMs: number
  readonly #listeners: Array<(event: RevocationEvent) => void> = []

  /** `keepMs`: how long an event matters (access-token lifetime plus clock skew). */
  constructor(keepMs: number) {
    this.#keepMs = keepMs
  }

  /** Every token of one session. */
  session(now: number, sessionId: string, userId: string): RevocationEvent {
    return { type: 'session', sessionId, userId, ...this.#window(now) }
  }

  /** Every token of a user issued before now (logout everywhere, password change). */
  user(now: number, userId: string): RevocationEvent {
    return { type: 'user', userId, ...this.#window(now) }
  }

  /** Every token signed by a key; `expiresAt` is when the key leaves the set. */
  key(now: number, kid: string, expiresAt: number): RevocationEvent {
    return { type: 'key', kid, issuedBefore: now, createdAt: now, expiresAt }
  }

  /** Called with every event this process stored (the issuer applies them to its own verifier). */
  onRecorded(listener: (event: RevocationEvent) => void): void {
    this.#listeners.push(listener)
  }

  /** Reports an event the store has just recorded. */
  recorded(event: RevocationEvent): void {
    for (const listener of this.#listeners) listener(event)
  }

  #window(now: number) {
    return { issuedBefore: now, createdAt: now, expiresAt: now + this.#keepMs }
  }
}
