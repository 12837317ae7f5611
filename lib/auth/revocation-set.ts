/**
 * The revocations a verifier knows of for one issuer, kept only until the tokens they affect have expired:
 * by session (`sid`), by user and time (`sub`, tokens issued before an instant), by token (`jti`) and by
 * signing key (`kid`). Filled from the issuer's revocation feed; consulted on every request, cached or not.
 */
import type { Identity } from './types.js'

export type RevocationEvent =
  | { type: 'session'; sessionId: string; expiresAt: number }
  | { type: 'user'; subject: string; issuedBefore: number; expiresAt: number }
  | { type: 'token'; tokenId: string; expiresAt: number }
  | { type: 'key'; kid: string; expiresAt: number }

/** Times are milliseconds since the epoch; `expiresAt` is when every token the event affects has expired. */
export class RevocationSet {
  readonly #sessions = new Map<string, number>()
  readonly #tokens = new Map<string, number>()
  readonly #keys = new Map<string, number>()
  /** subject → { issuedBefore, expiresAt }; a later event for the same user widens it. */
  readonly #users = new Map<string, { issuedBefore: number; expiresAt: number }>()

  get size(): number {
    return this.#sessions.size + this.#tokens.size + this.#keys.size + this.#users.size
  }

  apply(event: RevocationEvent): void {
    switch (event.type) {
      case 'session':
        this.#sessions.set(
          event.sessionId,
          Math.max(event.expiresAt, this.#sessions.get(event.sessionId) ?? 0),
        )
        break
      case 'token':
        this.#tokens.set(event.tokenId, Math.max(event.expiresAt, this.#tokens.get(event.tokenId) ?? 0))
        break
      case 'key':
        this.#keys.set(event.kid, Math.max(event.expiresAt, this.#keys.get(event.kid) ?? 0))
        break
      case 'user': {
        const prev = this.#users.get(event.subject)
        this.#users.set(event.subject, {
          issuedBefore: Math.max(event.issuedBefore, prev?.issuedBefore ?? 0),
          expiresAt: Math.max(event.expiresAt, prev?.expiresAt ?? 0),
        })
        break
      }
    }
  }

  /**
   * True when a revocation covers this identity. keygate's issuer writes `iat` with millisecond precision
   * (NumericDate allows fractions), so a user-wide revocation and a login in the same second are told apart;
   * a whole-second `iat` from another issuer counts as issued before a revocation in that second.
   */
  isRevoked(identity: Identity): boolean {
    if (this.size === 0) return false
    if (identity.sessionId !== undefined && this.#sessions.has(identity.sessionId)) return true
    if (this.#tokens.has(identity.tokenId) || this.#keys.has(identity.keyId)) return true
    const user = this.#users.get(identity.subject)
    // Issued at or before the revocation instant: in the same millisecond, refusing is the safe side.
    return user !== undefined && Math.round(identity.issuedAt * 1000) <= user.issuedBefore
  }

  /** Forgets revocations whose affected tokens have all expired. */
  prune(nowMs: number): void {
    for (const map of [this.#sessions, this.#tokens, this.#keys]) {
      for (const [id, expiresAt] of map) if (expiresAt <= nowMs) map.delete(id)
    }
    for (const [subject, entry] of this.#users) if (entry.expiresAt <= nowMs) this.#users.delete(subject)
  }
}
