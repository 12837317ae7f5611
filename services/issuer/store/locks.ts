/**
 * Work that several issuer instances sharing PostgreSQL must not do at once, and the advisory locks that
 * serialise it. SQLite needs none of this: one process owns the file, and `BEGIN IMMEDIATE` already
 * serialises every writer.
 */
import { sql } from 'kysely'
import { type IssuerDb, onPostgres } from './tables.js'
import type { ExclusiveTask, ExclusiveTasks } from './types.js'

/** Advisory locks are keyed by two int4s: keygate's namespace ('kg'), then the lock. */
const ADVISORY_LOCK_NAMESPACE = 0x6b67
const ADVISORY_LOCKS = { 'revocation-order': 1, 'key-maintenance': 2 } as const

type AdvisoryLock = keyof typeof ADVISORY_LOCKS

/** Waits for a transaction-scoped advisory lock (PostgreSQL only), released at commit or rollback. */
export async function advisoryTransactionLock(trx: IssuerDb, lock: AdvisoryLock): Promise<void> {
  await sql`select pg_advisory_xact_lock(${ADVISORY_LOCK_NAMESPACE}::int, ${ADVISORY_LOCKS[lock]}::int)`.execute(
    trx,
  )
}

/** Exclusive tasks over the issuer's database. */
export class ExclusiveTaskLocks implements ExclusiveTasks {
  readonly #db: IssuerDb
  readonly #postgres: boolean

  constructor(db: IssuerDb) {
    this.#db = db
    this.#postgres = onPostgres(db)
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
}
