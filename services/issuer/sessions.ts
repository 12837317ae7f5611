/**
 * Sessions and their refresh tokens. A refresh token is 256 random bits, stored only as its SHA-256 hash;
 * every refresh rotates it. Presenting a token that was already rotated revokes the whole session (RFC 9700
 * §4.14.2) — except within a short grace window, when it is the second of two concurrent refreshes (two
 * tabs) and earns a sibling token instead. Each session also has a CSRF token, checked on refresh and logout.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import { KeygateError } from '../../lib/errors.js'
import { sameSecret } from '../../lib/secrets.js'
import type { IssuerMetrics } from './metrics.js'
import type { Revocations } from './feed/revocations.js'
import type { IssuerStore, SessionRecord, SessionRevocationReason, UserRecord } from './store/types.js'

/** Bytes of randomness in a refresh or CSRF token. */
export const TOKEN_BYTES = 32

export interface SessionsOptions {
  store: IssuerStore
  /** Where every session revocation is recorded (and announced). */
  revocations: Revocations
  metrics: IssuerMetrics
  now: () => number
  idleTtlMs: number
  absoluteTtlMs: number
  reuseGraceMs: number
}

/** What the browser receives for a live session: the refresh token (cookie) and the CSRF token. */
export interface SessionGrant {
  session: SessionRecord
  user: UserRecord
  refreshToken: string
  csrfToken: string
}

/** The SHA-256 of a token, as stored. */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('base64url')
}

function randomToken(): string {
  return randomBytes(TOKEN_BYTES).toString('base64url')
}

/** Session operations over the store. */
export class Sessions {
  readonly #o: SessionsOptions

  constructor(options: SessionsOptions) {
    this.#o = options
  }

  /**
   * Starts a session for a user who just proved who they are. Every login method ends here, so this is
   * where a disabled account is refused (403 `KG_ACCOUNT_DISABLED`, told only to who proved the account).
   */
  async start(user: UserRecord, clientId: string): Promise<SessionGrant> {
    if (user.disabledAt !== null) throw new KeygateError('KG_ACCOUNT_DISABLED')
    const now = this.#o.now()
    const refreshToken = randomToken()
    const csrfToken = randomToken()
    const absoluteExpiresAt = now + this.#o.absoluteTtlMs
    const session = {
      id: randomUUID(),
      userId: user.id,
      clientId,
      csrfHash: tokenHash(csrfToken),
      createdAt: now,
      idleExpiresAt: Math.min(now + this.#o.idleTtlMs, absoluteExpiresAt),
      absoluteExpiresAt,
    }
    await this.#o.store.createSession(session, tokenHash(refreshToken))
    return {
      session: { ...session, lastUsedAt: now, revokedAt: null, revokedReason: null },
      user,
      refreshToken,
      csrfToken,
    }
  }

  /**
   * Exchanges a refresh token (with the session's CSRF token) for a new one. Throws KG_CSRF_FAILED,
   * KG_REFRESH_INVALID, or KG_REFRESH_REUSED after revoking the session.
   */
  async refresh(
    refreshToken: string,
    csrfToken: string | undefined,
    log: FastifyBaseLogger,
  ): Promise<SessionGrant> {
    const { store, metrics } = this.#o
    const hash = tokenHash(refreshToken)
    const found = await store.findRefreshToken(hash)
    if (!found) return this.#invalid()
    if (!csrfMatches(found.session, csrfToken)) {
      metrics.refreshes.inc({ outcome: 'csrf_failed' })
      throw new KeygateError('KG_CSRF_FAILED')
    }
    const now = this.#o.now()
    if (!live(found.session, now)) return this.#invalid()
    const user = await store.findUserById(found.session.userId)
    // Disabling revokes the user's sessions; this also covers a refresh racing with it.
    if (!user || user.disabledAt !== null) return this.#invalid()

    const next = randomToken()
    const session = found.session
    const idleExpiresAt = Math.min(now + this.#o.idleTtlMs, session.absoluteExpiresAt)
    const grant = (): SessionGrant => ({
      session: { ...session, lastUsedAt: now, idleExpiresAt },
      user,
      refreshToken: next,
      csrfToken: csrfToken!,
    })

    let supersededAt = found.token.supersededAt
    if (supersededAt === null) {
      const rotated = await store.rotateRefreshToken({
        sessionId: session.id,
        presentedHash: hash,
        newTokenHash: tokenHash(next),
        now,
        idleExpiresAt,
      })
      if (rotated) {
        metrics.refreshes.inc({ outcome: 'rotated' })
        return grant()
      }
      // A concurrent refresh of the same token won the guard: look at what it left.
      const again = await store.findRefreshToken(hash)
      if (!again || !live(again.session, now)) return this.#invalid()
      supersededAt = again.token.supersededAt ?? now
    }

    if (now - supersededAt <= this.#o.reuseGraceMs) {
      if (!(await store.addRefreshToken(session.id, tokenHash(next), now, idleExpiresAt)))
        return this.#invalid()
      metrics.refreshes.inc({ outcome: 'grace' })
      return grant()
    }

    await this.#o.revocations.recordSession(session.id, 'refresh_reuse')
    metrics.refreshes.inc({ outcome: 'reused' })
    metrics.refreshReuse.inc()
    log.warn({ sessionId: session.id, userId: user.id }, 'refresh token reuse detected; session revoked')
    throw new KeygateError('KG_REFRESH_REUSED')
  }

  /**
   * Ends the session a refresh token belongs to. Nothing to do for an unknown token (already gone), but a
   * present token must come with its session's CSRF token.
   */
  async logout(refreshToken: string, csrfToken: string | undefined): Promise<void> {
    if (!csrfToken) throw new KeygateError('KG_CSRF_FAILED')
    const found = await this.#o.store.findRefreshToken(tokenHash(refreshToken))
    if (!found) return
    if (!csrfMatches(found.session, csrfToken)) throw new KeygateError('KG_CSRF_FAILED')
    await this.revoke(found.session, 'logout')
  }

  /** Revokes one session (no-op when it is already revoked). */
  async revoke(session: SessionRecord, reason: SessionRevocationReason): Promise<void> {
    await this.#o.revocations.recordSession(session.id, reason)
  }

  /** Revokes one session by id; 404 when there is no such session. */
  async revokeById(sessionId: string, reason: SessionRevocationReason): Promise<void> {
    const session = await this.#o.store.findSession(sessionId)
    if (!session) throw new KeygateError('KG_SESSION_NOT_FOUND')
    await this.revoke(session, reason)
  }

  /** Revokes every session of a user and records one event covering all their tokens issued until now. */
  async revokeAll(userId: string, reason: SessionRevocationReason): Promise<number> {
    return this.#o.revocations.recordUser(userId, reason)
  }

  list(userId: string): Promise<SessionRecord[]> {
    return this.#o.store.listSessions(userId)
  }

  #invalid(): never {
    this.#o.metrics.refreshes.inc({ outcome: 'invalid' })
    throw new KeygateError('KG_REFRESH_INVALID')
  }
}

function live(session: SessionRecord, now: number): boolean {
  return session.revokedAt === null && now < session.idleExpiresAt && now < session.absoluteExpiresAt
}

/** Constant-time comparison of a presented CSRF token with the session's (its stored SHA-256 digest). */
function csrfMatches(session: SessionRecord, csrfToken: string | undefined): boolean {
  if (!csrfToken) return false
  return sameSecret(tokenHash(csrfToken), session.csrfHash)
}
