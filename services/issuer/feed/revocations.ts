/**
 * The one way a revocation enters the issuer: each method writes through the store (the revocation event in
 * the same transaction as the change it follows) and then wakes this instance's fan-out, which delivers the
 * event to the open feed streams and to the issuer's own verifier. No caller announces anything by hand, and
 * the issuer's verifier learns of each event once, from the fan-out, like every other subscriber. Each event
 * stays in the feed until every token it can affect has expired: the access-token lifetime plus the clock
 * skew verifiers allow, counted from the revocation.
 */
import type { RecordedRevocationEvent, RevocationEvent } from '@keygate/fastify-auth'
import type { IssuerStore, SessionRevocationReason } from '../store/types.js'

export interface RevocationsOptions {
  store: Pick<
    IssuerStore,
    'revokeSession' | 'revokeUserSessions' | 'changePassword' | 'disableUser' | 'recordRevocation'
  >
  /** How long an event matters, in milliseconds: the access-token lifetime plus the clock skew. */
  keepMs: number
  now: () => number
  /**
   * The fan-out to wake once an event is stored (`wake` resolves once it has delivered the event). The
   * command line has none: running instances pick its events up through NOTIFY or their poll.
   */
  fanout?: { wake(): Promise<void> }
}

/** Records revocations and wakes the fan-out (see the file comment). */
export class Revocations {
  readonly #o: RevocationsOptions

  constructor(options: RevocationsOptions) {
    this.#o = options
  }

  /** Revokes a live session and every token of it; false (and no event) when it was not live. */
  async recordSession(sessionId: string, reason: SessionRevocationReason): Promise<boolean> {
    const now = this.#o.now()
    const event: RevocationEvent = { type: 'session', sessionId, ...this.#window(now) }
    const revoked = await this.#o.store.revokeSession(sessionId, reason, now, event)
    if (revoked) await this.#announce()
    return revoked
  }

  /**
   * Revokes every session of a user and every token of theirs issued until now (logout everywhere, an
   * admin); returns how many sessions were live.
   */
  async recordUser(userId: string, reason: SessionRevocationReason): Promise<number> {
    const now = this.#o.now()
    const count = await this.#o.store.revokeUserSessions(userId, reason, now, this.#userEvent(userId, now))
    await this.#announce()
    return count
  }

  /** Changes a user's password and, in the same transaction, revokes as `recordUser` does. */
  async recordPasswordChange(userId: string, passwordHash: string): Promise<void> {
    const now = this.#o.now()
    await this.#o.store.changePassword(userId, passwordHash, now, this.#userEvent(userId, now))
    await this.#announce()
  }

  /**
   * Disables a user and, in the same transaction, revokes as `recordUser` does; false when there is no such
   * user or it was disabled already (nothing new to revoke: its sessions went when it was disabled).
   */
  async recordUserDisabled(userId: string): Promise<boolean> {
    const now = this.#o.now()
    const disabled = await this.#o.store.disableUser(userId, now, this.#userEvent(userId, now))
    if (disabled) await this.#announce()
    return disabled
  }

  /** Revokes one access token by its `jti`. */
  async recordToken(tokenId: string): Promise<RecordedRevocationEvent> {
    const now = this.#o.now()
    return this.#record({ type: 'token', tokenId, ...this.#window(now) })
  }

  /**
   * Revokes every token a key signed, from when it was revoked until it leaves the key set (`removeAt`,
   * after which no token it signed is still valid).
   */
  async recordKey(key: {
    kid: string
    revokedAt?: number
    removeAt?: number
  }): Promise<RecordedRevocationEvent> {
    const createdAt = key.revokedAt ?? this.#o.now()
    return this.#record({
      type: 'key',
      kid: key.kid,
      createdAt,
      expiresAt: key.removeAt ?? createdAt + this.#o.keepMs,
    })
  }

  async #record(event: RevocationEvent): Promise<RecordedRevocationEvent> {
    const recorded = await this.#o.store.recordRevocation(event)
    await this.#announce()
    return recorded
  }

  /** Delivered before the caller goes on: what this instance revoked, its own verifier refuses at once. */
  async #announce(): Promise<void> {
    await this.#o.fanout?.wake()
  }

  #userEvent(subject: string, now: number): RevocationEvent {
    return { type: 'user', subject, issuedBefore: now, ...this.#window(now) }
  }

  #window(now: number): { createdAt: number; expiresAt: number } {
    return { createdAt: now, expiresAt: now + this.#o.keepMs }
  }
}
