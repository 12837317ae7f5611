/** What a revocation can name of an identity (a download link carries these of the identity it was issued to). */
export type RevocableIdentity = Pick<
  Identity,
  'issuer' | 'subject' | 'sessionId' | 'tokenId' | 'keyId' | 'issuedAt'
>

/**
 * The revocations a verifier knows of for one issuer, kept only until the tokens they affect have expired:
 * by session (`sid`), by user and time (`sub`, tokens issued before an instant), by token (`jti`) and by
 * signing key (`kid`). Each trusted issuer's policy owns one; the issuer's revocation feed (or, inside the
 * issuer, its own fan-out) fills it. Consulted on every request, cached or not, and it tells whoever keeps
 * verified tokens (the verifier's cache) which of them a new revocation covers.
 */
import type { RevocationEvent } from './feed-protocol.js'
import type { Identity } from './types.js'

/** How often a verifier forgets revocations whose tokens have all expired, in milliseconds. */
export const REVOCATION_PRUNE_INTERVAL_MS = 60_000

/** Told, after new revocations were applied, which identities they cover (to drop them from a cache). */
export type RevokedListener = (revoked: (identity: Identity) => boolean) => void

/** Times are milliseconds since the epoch; `expiresAt` is when every token the event affects has expired. */
export class RevocationSet {
  /** The `iss` whose tokens these revocations are about; identities of another issuer are never covered. */
  readonly issuer: string
  readonly #sessions = new Map<string, number>()
  readonly #tokens = new Map<string, number>()
  readonly #keys = new Map<string, number>()
  /** subject → { issuedBefore, expiresAt }; a later event for the same user widens it. */
  readonly #users = new Map<string, { issuedBefore: number; expiresAt: number }>()
  readonly #listeners: RevokedListener[] = []
  readonly #isRevoked = (identity: Identity) => this.isRevoked(identity)

  constructor(issuer: string) {
    this.issuer = issuer
  }

  get size(): number {
    return this.#sessions.size + this.#tokens.size + this.#keys.size + this.#users.size
  }

  /** Calls `listener` after every `apply`, with the test for identities now revoked. */
  onRevoked(listener: RevokedListener): void {
    this.#listeners.push(listener)
  }

  /**
   * Applies a batch of revocations (in any order: each widens what is known), then tells the listeners
   * once for the whole batch.
   */
  apply(events: Iterable<RevocationEvent>): void {
    for (const event of events) this.#add(event)
    for (const listener of this.#listeners) listener(this.#isRevoked)
  }

  /**
   * True when a revocation covers this identity. keygate's issuer writes `iat` with millisecond precision
   * (NumericDate allows fractions), so a user-wide revocation and a login in the same second are told apart;
   * a whole-second `iat` from another issuer counts as issued before a revocation in that second.
   */
  isRevoked(identity: RevocableIdentity): boolean {
    if (this.size === 0 || identity.issuer !== this.issuer) return false
    if (identity.sessionId !== undefined && this.#sessions.has(identity.sessionId)) return true
    if (this.#tokens.has(identity.tokenId) || this.#keys.has(identity.keyId)) return true
    const user = this.#users.get(identity.subject)
    // Issued at or before the revocation instant: in the same millisecond, refusing is the safe side.
    return user !== undefined && Math.round(identity.issuedAt * 1000) <= user.issuedBefore
  }

  /** Forgets revocations whose affected tokens have all expired by `nowMs`. */
  prune(nowMs: number): void {
    for (const map of [this.#sessions, this.#tokens, this.#keys]) {
      for (const [id, expiresAt] of map) if (expiresAt <= nowMs) map.delete(id)
    }
    for (const [subject, entry] of this.#users) if (entry.expiresAt <= nowMs) this.#users.delete(subject)
  }

  #add(event: RevocationEvent): void {
    switch (event.type) {
      case 'session':
        widen(this.#sessions, event.sessionId, event.expiresAt)
        break
      case 'token':
        widen(this.#tokens, event.tokenId, event.expiresAt)
        break
      case 'key':
        widen(this.#keys, event.kid, event.expiresAt)
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
}

function widen(map: Map<string, number>, id: string, expiresAt: number): void {
  map.set(id, Math.max(expiresAt, map.get(id) ?? 0))
}
