/**
 * Sessions and their refresh tokens. A refresh token is stored only as its hash; rotating one, and
 * revoking a session with the event that announces it, each run in one write transaction.
 */
import type { ExpressionBuilder } from 'kysely'
import type { RevocationEvent } from '@keygate/fastify-auth'
import { precompile, writeTransaction } from '../../../lib/db.js'
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

/**
 * A refresh's queries (finding the token, rotating it), built and compiled once for the database's dialect:
 * a refresh only binds their values. Kysely building and compiling them took more CPU than SQLite running
 * them (measured, see docs/benchmarks.md). The placeholders are values no query holds otherwise.
 */
function refreshQueries(db: IssuerDb) {
  const p = { hash: '\0hash', sessionId: '\0session', now: -1, idleExpiresAt: -2 }
  return {
    findToken: precompile({ hash: p.hash }, ({ hash }) =>
      db
        .selectFrom('refresh_tokens as t')
        .innerJoin('sessions as s', 's.id', 't.session_id')
        .selectAll('s')
        .select(['t.token_hash', 't.created_at as token_created_at', 't.superseded_at'])
        .where('t.token_hash', '=', hash),
    ),
    /** The guard: supersedes the presented token only if nothing has yet. */
    supersedePresented: precompile({ now: p.now, hash: p.hash, sessionId: p.sessionId }, (v) =>
      db
        .updateTable('refresh_tokens')
        .set({ superseded_at: v.now })
        .where('token_hash', '=', v.hash)
        .where('session_id', '=', v.sessionId)
        .where('superseded_at', 'is', null),
    ),
    extendLiveSession: precompile(
      { now: p.now, idleExpiresAt: p.idleExpiresAt, sessionId: p.sessionId },
      (v) =>
        db
          .updateTable('sessions')
          .set({ last_used_at: v.now, idle_expires_at: v.idleExpiresAt })
          .where('id', '=', v.sessionId)
          .where('revoked_at', 'is', null),
    ),
    supersedeCurrent: precompile({ now: p.now, sessionId: p.sessionId }, (v) =>
      db
        .updateTable('refresh_tokens')
        .set({ superseded_at: v.now })
        .where('session_id', '=', v.sessionId)
        .where('superseded_at', 'is', null),
    ),
    insertToken: precompile({ hash: p.hash, sessionId: p.sessionId, now: p.now }, (v) =>
      db
        .insertInto('refresh_tokens')
        .values({ token_hash: v.hash, session_id: v.sessionId, created_at: v.now, superseded_at: null }),
    ),
  }
}

/** Sessions and refresh tokens on the issuer's database. */
export class SessionRepository implements SessionStore {
  readonly #db: IssuerDb
  readonly #refresh: ReturnType<typeof refreshQueries>

  constructor(db: IssuerDb) {
    this.#db = db
    this.#refresh = refreshQueries(db)
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
    const { rows } = await this.#db.executeQuery(this.#refresh.findToken.bind({ hash: tokenHash }))
    const row = rows[0]
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
    const { sessionId, now, idleExpiresAt } = rotation
    const queries = this.#refresh
    return writeTransaction(this.#db, async (trx) => {
      const guard = queries.supersedePresented.bind({ now, hash: rotation.presentedHash, sessionId })
      if (!changedOne(await trx.executeQuery(guard))) return false
      if (!(await this.#extendLiveSession(trx, sessionId, now, idleExpiresAt))) throw ROLLBACK
      await trx.executeQuery(queries.supersedeCurrent.bind({ now, sessionId }))
      await trx.executeQuery(queries.insertToken.bind({ hash: rotation.newTokenHash, sessionId, now }))
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
      if (!(await this.#extendLiveSession(trx, sessionId, now, idleExpiresAt))) return false
      await trx.executeQuery(this.#refresh.insertToken.bind({ hash: tokenHash, sessionId, now }))
      return true
    })
  }

  /** Inside the caller's transaction: moves a live session's idle expiry on; false when it is revoked. */
  async #extendLiveSession(trx: IssuerDb, sessionId: string, now: number, idleExpiresAt: number) {
    return changedOne(
      await trx.executeQuery(this.#refresh.extendLiveSession.bind({ now, idleExpiresAt, sessionId })),
    )
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

/** Whether an update changed exactly one row. */
function changedOne(result: { numAffectedRows?: bigint }): boolean {
  return result.numAffectedRows === 1n
}
