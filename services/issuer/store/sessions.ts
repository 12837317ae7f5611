/**
 * Sessions and their refresh tokens. A refresh token is stored only as its hash; rotating one, and
 * revoking a session with the event that announces it, each run in one write transaction.
 */
import type { ExpressionBuilder } from 'kysely'
import type { RevocationEvent } from '@keygate/fastify-auth'
import { writeTransaction } from '../../../lib/db.js'
import { insertEvent } from './revocations.js'
import { type IssuerDb, type IssuerTables, toSession } from './tables.js'
import type {
  NewSession,
  RefreshRotation,
  RefreshTokenWithSession,
  SessionRecord,
  SessionRevocationReason,
  SessionStore,
} from './types.js'

/** Sessions and refresh tokens on the issuer's database. */
export class SessionRepository implements SessionStore {
  readonly #db: IssuerDb

  constructor(db: IssuerDb) {
    this.#db = db
  }

  async createSession(session: NewSession, refreshTokenHash: string): Promise<void> {
    await writeTransaction(this.#db, async (trx) => {
      await trx
        .insertInto('sessions')
        .values({
          id: session.id,
          user_id: session.userId,
          client_id: session.clientId,
          csrf_hash: session.csrfHash,
          created_at: session.createdAt,
          last_used_at: session.createdAt,
          idle_expires_at: session.idleExpiresAt,
          absolute_expires_at: session.absoluteExpiresAt,
          revoked_at: null,
          revoked_reason: null,
        })
        .execute()
      await trx
        .insertInto('refresh_tokens')
        .values({
          token_hash: refreshTokenHash,
          session_id: session.id,
          created_at: session.createdAt,
          superseded_at: null,
        })
        .execute()
    })
  }

  async findSession(id: string): Promise<SessionRecord | undefined> {
    const row = await this.#db.selectFrom('sessions').selectAll().where('id', '=', id).executeTakeFirst()
    return row && toSession(row)
  }

  async listSessions(userId: string): Promise<SessionRecord[]> {
    const rows = await this.#db
      .selectFrom('sessions')
      .selectAll()
      .where('user_id', '=', userId)
      .orderBy('created_at', 'desc')
      .execute()
    return rows.map(toSession)
  }

  async findRefreshToken(tokenHash: string): Promise<RefreshTokenWithSession | undefined> {
    const row = await this.#db
      .selectFrom('refresh_tokens as t')
      .innerJoin('sessions as s', 's.id', 't.session_id')
      .selectAll('s')
      .select(['t.token_hash', 't.created_at as token_created_at', 't.superseded_at'])
      .where('t.token_hash', '=', tokenHash)
      .executeTakeFirst()
    if (!row) return undefined
    return {
      token: {
        tokenHash: row.token_hash,
        sessionId: row.id,
        createdAt: row.token_created_at,
        supersededAt: row.superseded_at,
      },
      session: toSession(row),
    }
  }

  async rotateRefreshToken(rotation: RefreshRotation): Promise<boolean> {
    return writeTransaction(this.#db, async (trx) => {
      const guarded = await trx
        .updateTable('refresh_tokens')
        .set({ superseded_at: rotation.now })
        .where('token_hash', '=', rotation.presentedHash)
        .where('session_id', '=', rotation.sessionId)
        .where('superseded_at', 'is', null)
        .executeTakeFirst()
      if (Number(guarded.numUpdatedRows) !== 1) return false
      if (!(await extendLiveSession(trx, rotation.sessionId, rotation.now, rotation.idleExpiresAt))) {
        throw ROLLBACK
      }
      await trx
        .updateTable('refresh_tokens')
        .set({ superseded_at: rotation.now })
        .where('session_id', '=', rotation.sessionId)
        .where('superseded_at', 'is', null)
        .execute()
      await trx
        .insertInto('refresh_tokens')
        .values({
          token_hash: rotation.newTokenHash,
          session_id: rotation.sessionId,
          created_at: rotation.now,
          superseded_at: null,
        })
        .execute()
      return true
    }).catch(rollbackAsFalse)
  }

  async addRefreshToken(
    sessionId: string,
    tokenHash: string,
    now: number,
    idleExpiresAt: number,
  ): Promise<boolean> {
    return writeTransaction(this.#db, async (trx) => {
      if (!(await extendLiveSession(trx, sessionId, now, idleExpiresAt))) return false
      await trx
        .insertInto('refresh_tokens')
        .values({ token_hash: tokenHash, session_id: sessionId, created_at: now, superseded_at: null })
        .execute()
      return true
    })
  }

  async revokeSession(
    id: string,
    reason: SessionRevocationReason,
    now: number,
    event: RevocationEvent,
  ): Promise<boolean> {
    return writeTransaction(this.#db, async (trx) => {
      const result = await trx
        .updateTable('sessions')
        .set({ revoked_at: now, revoked_reason: reason })
        .where('id', '=', id)
        .where('revoked_at', 'is', null)
        .executeTakeFirst()
      if (Number(result.numUpdatedRows) !== 1) return false
      await insertEvent(trx, event)
      return true
    })
  }

  async revokeUserSessions(
    userId: string,
    reason: SessionRevocationReason,
    now: number,
    event: RevocationEvent,
  ): Promise<number> {
    return writeTransaction(this.#db, async (trx) => {
      const count = await revokeAllSessions(trx, userId, reason, now)
      await insertEvent(trx, event)
      return count
    })
  }
}

/** Revokes, inside the caller's transaction, every live session of a user; returns how many. */
export async function revokeAllSessions(
  trx: IssuerDb,
  userId: string,
  reason: SessionRevocationReason,
  now: number,
): Promise<number> {
  const result = await trx
    .updateTable('sessions')
    .set({ revoked_at: now, revoked_reason: reason })
    .where('user_id', '=', userId)
    .where('revoked_at', 'is', null)
    .executeTakeFirst()
  return Number(result.numUpdatedRows)
}

/**
 * Deletes, inside the caller's transaction, sessions past their expiry or revoked for longer than
 * `revokedSessionKeepMs`, with their refresh tokens; returns how many sessions.
 */
export async function deleteExpiredSessions(
  trx: IssuerDb,
  now: number,
  revokedSessionKeepMs: number,
): Promise<number> {
  const expired = (eb: ExpressionBuilder<IssuerTables, 'sessions'>) =>
    eb.or([
      eb('idle_expires_at', '<=', now),
      eb('absolute_expires_at', '<=', now),
      eb('revoked_at', '<=', now - revokedSessionKeepMs),
    ])
  // Tokens first: SQLite enforces the cascade only where foreign keys are on, so do not rely on it.
  await trx
    .deleteFrom('refresh_tokens')
    .where('session_id', 'in', trx.selectFrom('sessions').select('id').where(expired))
    .execute()
  const sessions = await trx.deleteFrom('sessions').where(expired).executeTakeFirst()
  return Number(sessions.numDeletedRows)
}

/** Thrown inside a transaction to roll it back; turned into `false` by `rollbackAsFalse`. */
const ROLLBACK = Symbol('rollback')

function rollbackAsFalse(err: unknown): false {
  if (err === ROLLBACK) return false
  throw err
}

async function extendLiveSession(
  trx: IssuerDb,
  id: string,
  now: number,
  idleExpiresAt: number,
): Promise<boolean> {
  const result = await trx
    .updateTable('sessions')
    .set({ last_used_at: now, idle_expires_at: idleExpiresAt })
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .executeTakeFirst()
  return Number(result.numUpdatedRows) === 1
}
