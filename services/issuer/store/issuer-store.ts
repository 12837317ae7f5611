/**
 * The IssuerStore on Kysely: one repository per aggregate (users, sessions, revocations, key set,
 * exclusive tasks) over one database handle and one set of migrations, the same queries on SQLite
 * (embedded default) and PostgreSQL. Every change that must be all-or-nothing (rotating a refresh token,
 * revoking and recording the event) runs in one `writeTransaction`. What only matters when several issuer
 * instances share PostgreSQL (event ordering, NOTIFY, advisory locks, row locks on the key set) is added
 * on that dialect alone: SQLite's `BEGIN IMMEDIATE` already serialises every writer.
 */
import type { RecordedRevocationEvent, RevocationEvent } from '@keygate/fastify-auth'
import { openDatabase, writeTransaction } from '../../../lib/db.js'
import { ClientRepository } from './clients.js'
import { KeySetRepository } from './key-set.js'
import { ExclusiveTaskLocks } from './locks.js'
import { issuerMigrations } from './migrations.js'
import { EmailCodeRepository } from './email-codes.js'
import { IdentityRepository } from './identities.js'
import { deleteExpiredEvents, RevocationRepository } from './revocations.js'
import { deleteExpiredSessions, SessionRepository } from './sessions.js'
import { KyselyThrottleCounters } from './throttle-counters.js'
import type { IssuerDb, IssuerTables } from './tables.js'
import type {
  ExclusiveTask,
  IssuerStore,
  KeySetChange,
  NewSession,
  RefreshRotation,
  RefreshTokenWithSession,
  SessionRecord,
  SessionRevocationReason,
  StoredKeySet,
  UserRecord,
} from './types.js'
import { UserRepository } from './users.js'

/**
 * Opens the issuer's database (a SQLite file or `postgres://…`) and brings its schema up to date.
 * @example
 * const store = await openIssuerStore('data/issuer.db')
 */
export async function openIssuerStore(url: string): Promise<IssuerStore> {
  return new KyselyIssuerStore(await openDatabase<IssuerTables>({ url, migrations: issuerMigrations }))
}

/** The one IssuerStore implementation: each method is its aggregate's repository's. */
export class KyselyIssuerStore implements IssuerStore {
  readonly #db: IssuerDb
  readonly #users: UserRepository
  readonly #sessions: SessionRepository
  readonly #revocations: RevocationRepository
  readonly #keySet: KeySetRepository
  readonly #locks: ExclusiveTaskLocks
  readonly throttleCounters: KyselyThrottleCounters
  readonly emailCodes: EmailCodeRepository
  readonly identities: IdentityRepository
  readonly clients: ClientRepository

  constructor(db: IssuerDb) {
    this.#db = db
    this.#users = new UserRepository(db)
    this.#sessions = new SessionRepository(db)
    this.#revocations = new RevocationRepository(db)
    this.#keySet = new KeySetRepository(db)
    this.#locks = new ExclusiveTaskLocks(db)
    this.throttleCounters = new KyselyThrottleCounters(db)
    this.emailCodes = new EmailCodeRepository(db)
    this.identities = new IdentityRepository(db)
    this.clients = new ClientRepository(db)
  }

  // Users (store/users.ts)
  createUser(user: UserRecord): Promise<void> {
    return this.#users.createUser(user)
  }
  findUserById(id: string): Promise<UserRecord | undefined> {
    return this.#users.findUserById(id)
  }
  findUserByEmail(email: string): Promise<UserRecord | undefined> {
    return this.#users.findUserByEmail(email)
  }
  listUsers(page: { limit: number; offset: number }): Promise<UserRecord[]> {
    return this.#users.listUsers(page)
  }
  setUserRoles(id: string, roles: string[], now: number): Promise<boolean> {
    return this.#users.setUserRoles(id, roles, now)
  }
  setPasswordHash(id: string, passwordHash: string, now: number): Promise<boolean> {
    return this.#users.setPasswordHash(id, passwordHash, now)
  }
  changePassword(userId: string, passwordHash: string, now: number, event: RevocationEvent): Promise<void> {
    return this.#users.changePassword(userId, passwordHash, now, event)
  }
  disableUser(userId: string, now: number, event: RevocationEvent): Promise<boolean> {
    return this.#users.disableUser(userId, now, event)
  }
  enableUser(userId: string, now: number): Promise<boolean> {
    return this.#users.enableUser(userId, now)
  }

  // Sessions and refresh tokens (store/sessions.ts)
  createSession(session: NewSession, refreshTokenHash: string): Promise<void> {
    return this.#sessions.createSession(session, refreshTokenHash)
  }
  findSession(id: string): Promise<SessionRecord | undefined> {
    return this.#sessions.findSession(id)
  }
  listSessions(userId: string): Promise<SessionRecord[]> {
    return this.#sessions.listSessions(userId)
  }
  findRefreshToken(tokenHash: string): Promise<RefreshTokenWithSession | undefined> {
    return this.#sessions.findRefreshToken(tokenHash)
  }
  rotateRefreshToken(rotation: RefreshRotation): Promise<boolean> {
    return this.#sessions.rotateRefreshToken(rotation)
  }
  addRefreshToken(
    sessionId: string,
    tokenHash: string,
    now: number,
    idleExpiresAt: number,
  ): Promise<boolean> {
    return this.#sessions.addRefreshToken(sessionId, tokenHash, now, idleExpiresAt)
  }
  revokeSession(
    id: string,
    reason: SessionRevocationReason,
    now: number,
    event: RevocationEvent,
  ): Promise<boolean> {
    return this.#sessions.revokeSession(id, reason, now, event)
  }
  revokeUserSessions(
    userId: string,
    reason: SessionRevocationReason,
    now: number,
    event: RevocationEvent,
  ): Promise<number> {
    return this.#sessions.revokeUserSessions(userId, reason, now, event)
  }

  // Revocation events (store/revocations.ts)
  recordRevocation(event: RevocationEvent): Promise<RecordedRevocationEvent> {
    return this.#revocations.recordRevocation(event)
  }
  listRevocations(afterCursor: number, limit: number): Promise<RecordedRevocationEvent[]> {
    return this.#revocations.listRevocations(afterCursor, limit)
  }
  latestRevocationCursor(): Promise<number> {
    return this.#revocations.latestRevocationCursor()
  }

  // The shared key set (store/key-set.ts)
  readKeySet(): Promise<StoredKeySet> {
    return this.#keySet.readKeySet()
  }
  keySetRevision(): Promise<number> {
    return this.#keySet.keySetRevision()
  }
  updateKeySet<R>(change: KeySetChange<R>): Promise<StoredKeySet & { result: R }> {
    return this.#keySet.updateKeySet(change)
  }

  // Exclusive tasks (store/locks.ts)
  runExclusively(task: ExclusiveTask, fn: () => Promise<void>): Promise<boolean> {
    return this.#locks.runExclusively(task, fn)
  }

  // The database as a whole
  async prune(now: number, revokedSessionKeepMs: number): Promise<{ sessions: number; events: number }> {
    return writeTransaction(this.#db, async (trx) => ({
      sessions: await deleteExpiredSessions(trx, now, revokedSessionKeepMs),
      events: await deleteExpiredEvents(trx, now),
    }))
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
