/**
 * The revocation events the feed serves, in cursor order. Every write that records an event (here, or in
 * the same transaction as a session change through `insertEvent`) is ordered and announced the same way.
 */
import { sql } from 'kysely'
import type { RecordedRevocationEvent, RevocationEvent } from '@keygate/fastify-auth'
import { writeTransaction } from '../../../lib/db.js'
import { advisoryTransactionLock } from './locks.js'
import { fromEvent, type IssuerDb, onPostgres, toEvent } from './tables.js'
import type { RevocationStore } from './types.js'

/** PostgreSQL channel notified (at commit) by every transaction that records a revocation event. */
export const REVOCATION_CHANNEL = 'keygate_revocations'

/** Revocation events on the issuer's database. */
export class RevocationRepository implements RevocationStore {
  readonly #db: IssuerDb

  constructor(db: IssuerDb) {
    this.#db = db
  }

  async recordRevocation(event: RevocationEvent): Promise<RecordedRevocationEvent> {
    return writeTransaction(this.#db, (trx) => insertEvent(trx, event))
  }

  async listRevocations(afterCursor: number, limit: number): Promise<RecordedRevocationEvent[]> {
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
}

/**
 * Inserts an event inside the caller's write transaction, ordered and announced as `recordRevocation`
 * promises. Call it last in the transaction: on PostgreSQL it holds the ordering lock until the commit.
 */
export async function insertEvent(trx: IssuerDb, event: RevocationEvent): Promise<RecordedRevocationEvent> {
  const postgres = onPostgres(trx)
  // A sequence hands out cursors at insert, not at commit: two writers could commit 11 before 10, and a
  // feed reader that saw 11 would skip 10 for good. Holding this lock from the insert to the commit makes
  // commit order cursor order. It is the transaction's last statement, so it is held only for the commit.
  if (postgres) await advisoryTransactionLock(trx, 'revocation-order')
  const row = await trx
    .insertInto('revocation_events')
    .values(fromEvent(event))
    .returning('cursor')
    .executeTakeFirstOrThrow()
  const cursor = Number(row.cursor)
  // Delivered to every listening instance when (and only if) the transaction commits.
  if (postgres) await sql`select pg_notify(${REVOCATION_CHANNEL}, ${String(cursor)})`.execute(trx)
  return { ...event, cursor }
}

/** Deletes, inside the caller's transaction, the events no verifier needs any more; returns how many. */
export async function deleteExpiredEvents(trx: IssuerDb, now: number): Promise<number> {
  const events = await trx.deleteFrom('revocation_events').where('expires_at', '<=', now).executeTakeFirst()
  return Number(events.numDeletedRows)
}
