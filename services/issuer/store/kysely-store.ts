/**
 * The IssuerStore on Kysely: the same queries on SQLite (embedded default) and PostgreSQL. Every change
 * that must be all-or-nothing (rotating a refresh token, revoking and recording the event) runs in one
 * `writeTransaction`. What only matters when several issuer instances share PostgreSQL (event ordering,
 * NOTIFY, advisory locks, row locks on the key set) is added on that dialect alone: SQLite's
 * `BEGIN IMMEDIATE` already serialises every writer.
 */
import { type ExpressionBuilder, type Kysely, sql } from 'kysely'
import { dialectOf, openDatabase, writeTransaction } from '../../../lib/db.js'
import { issuerMigrations } from './migrations.js'
import { fromSealedKey, type IssuerTables, toEvent, toSealedKey, toSession, toUser } from './tables.js'
import { KyselyThrottleCounters } from './throttle-counters.js'
import {
  EmailTakenError,
  type ExclusiveTask,
  type IssuerStore,
  type KeySetChange,
  type NewSession,
  type RefreshRotation,
  type RefreshTokenWithSession,
  type RevocationEvent,
  type SessionRecord,
  type SessionRevocationReason,
  type StoredKeySet,
  type StoredRevocationEvent,
  type UserRecord,
} from './types.js'

type Db = Kysely<IssuerTables>

/** PostgreSQL channel notified (at commit) by every transaction that records a revocation event. */
export const REVOCATION_CHANNEL = 'keygate_revocations'
/** Advisory locks are keyed by two int4s: keygate's namespace ('kg'), then the lock. */
const ADVISORY_LOCK_NAMESPACE = 0x6b67
const ADVISORY_LOCKS = { 'revocation-order': 1, 'key-maintenance': 2 } as const

const isPostgres = (db: Db) => dialectOf(db as Kysely<unknown>) === 'postgres'

/**
 * Opens the issuer's database (a SQLite file or `postgres://…`) and brings its schema up to date.
 * @example
 * const store = await openIssuerStore('data/issuer.db')
 */
export async function openIssuerStore(url: string): Promise<IssuerStore> {
  return new KyselyIssuerStore(await openDatabase<IssuerTables>({ url, migrations: issuerMigrations }))
}

/** The one IssuerStore implementation. */
export class KyselyIssuerStore implements IssuerStore {
  readonly #db: Db
  readonly #postgres: boolean
  readonly throttleCounters: KyselyThrottleCounters

  constructor(db: Db) {
    this.#db = db
    this.#postgres = isPostgres(db)
    this.throttleCounters = new KyselyThrottleCounters(db)
  }

  async createUser(user: UserRecord): Promise<void> {
    try {
      await this.#db
        .insertInto('users')
        .values({
          id: user.id,
          email: user.email,
          password_hash: user.passwordHash,
          roles: JSON.stringify(user.roles),
          created_at: user.createdAt,
          updated_at: user.updatedAt,
        })
        .execute()
    } catch (err) {
      if (isUniqueViolation(err)) throw new EmailTakenError()
      throw err
    }
  }

  async findUserById(id: string): Promise<UserRecord | undefined> {
    const row = await this.#db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst()
    return row && toUser(row)
  }

  async findUserByEmail(email: string): Promise<UserRecord | undefined> {
    const row = await this.#db.selectFrom('users').selectAll().where('email', '=', email).executeTakeFirst()
    return row && toUser(row)
  }

  async listUsers(page: { limit: number; offset: number }): Promise<UserRecord[]> {
    const rows = await this.#db
      .selectFrom('users')
      .selectAll()
      .orderBy('created_at')
      .orderBy('id')
      .limit(page.limit)
      .offset(page.offset)
      .execute()
    return rows.map(toUser)
  }

  async setUserRoles(id: string, roles: string[], now: number): Promise<boolean> {
    const result = await this.#db
      .updateTable('users')
      .set({ roles: JSON.stringify(roles), updated_at: now })
      .where('id', '=', id)
      .executeTakeFirst()
    return Number(result.numUpdatedRows) === 1
  }

  async setPasswordHash(id: string, passwordHash: string, now: number): Promise<boolean> {
    const result = await this.#db
      .updateTable('users')
      .set({ password_hash: passwordHash, updated_at: now })
      .where('id', '=', id)
      .executeTakeFirst()
    return Number(result.numUpdatedRows) === 1
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

  async changePassword(
    userId: string,
    passwordHash: string,
    now: number,
    event: RevocationEvent,
  ): Promise<void> {
    await writeTransaction(this.#db, async (trx) => {
      await trx
        .updateTable('users')
        .set({ password_hash: passwordHash, updated_at: now })
        .where('id', '=', userId)
        .execute()
      await revokeAllSessions(trx, userId, 'password_change', now)
      await insertEvent(trx, event)
    })
  }

  async recordRevocation(event: RevocationEvent): Promise<StoredRevocationEvent> {
    return writeTransaction(this.#db, (trx) => insertEvent(trx, event))
  }

  async listRevocations(afterCursor: number, limit: number): Promise<StoredRevocationEvent[]> {
    const rows = await this.#db
      .selectFrom('revocation_events')
      .selectAll()
      .where('cursor', '>', afterCursor)
      .orderBy('cursor')
      .limit(limit)
      .execute()
    return rows.map(toEvent)
  }

  async latestRevocationCursor(): Promise<number> {
    const row = await this.#db
      .selectFrom('revocation_events')
      .select((eb) => eb.fn.max('cursor').as('latest'))
      .executeTakeFirst()
    return Number(row?.latest ?? 0)
  }

  async readKeySet(): Promise<StoredKeySet> {
    return readKeySet(this.#db, false)
  }

  async keySetRevision(): Promise<number> {
    const row = await this.#db
      .selectFrom('key_set_revision')
      .select('revision')
      .where('id', '=', 1)
      .executeTakeFirstOrThrow()
    return Number(row.revision)
  }

  async updateKeySet<R>(change: KeySetChange<R>): Promise<StoredKeySet & { result: R }> {
    return writeTransaction(this.#db, async (trx) => {
      const current = await readKeySet(trx, this.#postgres)
      const { keys, result } = await change(current)
      if (!keys) return { ...current, result }
      await trx.deleteFrom('signing_keys').execute()
      if (keys.length > 0) await trx.insertInto('signing_keys').values(keys.map(fromSealedKey)).execute()
      const revision = current.revision + 1
      await trx.updateTable('key_set_revision').set({ revision }).where('id', '=', 1).execute()
      return { keys, revision, result }
    })
  }

  async runExclusively(task: ExclusiveTask, fn: () => Promise<void>): Promise<boolean> {
    if (!this.#postgres) {
      await fn()
      return true
    }
    // A transaction-scoped lock: released at commit, or by the server if this process dies mid-task.
    return this.#db.transaction().execute(async (trx) => {
      const { rows } = await sql<{ locked: boolean }>`select pg_try_advisory_xact_lock(
        ${ADVISORY_LOCK_NAMESPACE}::int, ${ADVISORY_LOCKS[task]}::int) as locked`.execute(trx)
      if (!rows[0]?.locked) return false
      await fn()
      return true
    })
  }

  async prune(now: number, revokedSessionKeepMs: number): Promise<{ sessions: number; events: number }> {
    return writeTransaction(this.#db, async (trx) => {
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
      const events = await trx
        .deleteFrom('revocation_events')
        .where('expires_at', '<=', now)
        .executeTakeFirst()
      return { sessions: Number(sessions.numDeletedRows), events: Number(events.numDeletedRows) }
    })
  }

  async ping(): Promise<boolean> {
    try {
      await this.#db.selectFrom('users').select('id').limit(1).execute()
      return true
    } catch {
      return false
    }
  }

  async close(): Promise<void> {
    await this.#db.destroy()
  }
}

/** Thrown inside a transaction to roll it back; turned into `false` by `rollbackAsFalse`. */
const ROLLBACK = Symbol('rollback')

function rollbackAsFalse(err: unknown): false {
  if (err === ROLLBACK) return false
  throw err
}

async function extendLiveSession(trx: Db, id: string, now: number, idleExpiresAt: number): Promise<boolean> {
  const result = await trx
    .updateTable('sessions')
    .set({ last_used_at: now, idle_expires_at: idleExpiresAt })
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .executeTakeFirst()
  return Number(result.numUpdatedRows) === 1
}

async function revokeAllSessions(
  trx: Db,
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

/** The key set; on PostgreSQL `lock` takes the revision row's lock first, serialising every change. */
async function readKeySet(db: Db, lock: boolean): Promise<StoredKeySet> {
  const revision = await db
    .selectFrom('key_set_revision')
    .select('revision')
    .where('id', '=', 1)
    .$if(lock, (qb) => qb.forUpdate())
    .executeTakeFirstOrThrow()
  const rows = await db.selectFrom('signing_keys').selectAll().orderBy('created_at').orderBy('kid').execute()
  return { keys: rows.map(toSealedKey), revision: Number(revision.revision) }
}

async function insertEvent(trx: Db, event: RevocationEvent): Promise<StoredRevocationEvent> {
  const postgres = isPostgres(trx)
  // A sequence hands out cursors at insert, not at commit: two writers could commit 11 before 10, and a
  // feed reader that saw 11 would skip 10 for good. Holding this lock from the insert to the commit makes
  // commit order cursor order. It is the transaction's last statement, so it is held only for the commit.
  if (postgres) {
    await sql`select pg_advisory_xact_lock(${ADVISORY_LOCK_NAMESPACE}::int, ${ADVISORY_LOCKS['revocation-order']}::int)`.execute(
      trx,
    )
  }
  const row = await trx
    .insertInto('revocation_events')
    .values({
      type: event.type,
      session_id: event.sessionId ?? null,
      user_id: event.userId ?? null,
      jti: event.jti ?? null,
      kid: event.kid ?? null,
      issued_before: event.issuedBefore,
      created_at: event.createdAt,
      expires_at: event.expiresAt,
    })
    .returning('cursor')
    .executeTakeFirstOrThrow()
  const cursor = Number(row.cursor)
  // Delivered to every listening instance when (and only if) the transaction commits.
  if (postgres) await sql`select pg_notify(${REVOCATION_CHANNEL}, ${String(cursor)})`.execute(trx)
  return { ...event, cursor }
}

function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: string }).code
  // PostgreSQL unique_violation, SQLite's extended constraint code.
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY'
}
