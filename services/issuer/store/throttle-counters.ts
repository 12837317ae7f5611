/**
 * The throttles' counters in the issuer's database (table `throttle_counters`, migration
 * 0003-throttle-counters), on SQLite and PostgreSQL alike: every instance sharing the database shares them,
 * and a restart keeps them. One row per key; the login and registration throttles own what a key means.
 */
import type { Kysely } from 'kysely'
import { dialectOf, writeTransaction } from '../../../lib/db.js'
import type { IssuerTables } from './tables.js'
import type { ThrottleCounter, ThrottleCounters, ThrottleCounterWrites } from './types.js'

const ZERO: ThrottleCounter = { count: 0, blockedUntil: 0, expiresAt: 0 }

/** ThrottleCounters over Kysely. */
export class KyselyThrottleCounters implements ThrottleCounters {
  readonly #db: Kysely<IssuerTables>
  readonly #postgres: boolean

  constructor(db: Kysely<IssuerTables>) {
    this.#db = db
    this.#postgres = dialectOf(db as Kysely<unknown>) === 'postgres'
  }

  async update<R>(
    keys: readonly string[],
    now: number,
    change: (current: ReadonlyMap<string, ThrottleCounter>) => { writes: ThrottleCounterWrites; result: R },
  ): Promise<R> {
    // One order for every transaction, so two instances locking overlapping keys cannot deadlock.
    const sorted = [...new Set(keys)].sort()
    return writeTransaction(this.#db, async (trx) => {
      if (this.#postgres && sorted.length > 0) {
        // Rows must exist to be locked: a missing one is created (as an expired zero) first. SQLite's
        // BEGIN IMMEDIATE already serialises every writer.
        await trx
          .insertInto('throttle_counters')
          .values(sorted.map((key) => ({ key, count: 0, blocked_until: 0, expires_at: 0 })))
          .onConflict((oc) => oc.column('key').doNothing())
          .execute()
      }
      const rows =
        sorted.length === 0
          ? []
          : await trx
              .selectFrom('throttle_counters')
              .selectAll()
              .where('key', 'in', sorted)
              .orderBy('key')
              .$if(this.#postgres, (qb) => qb.forUpdate())
              .execute()
      const current = new Map<string, ThrottleCounter>(sorted.map((key) => [key, ZERO]))
      for (const row of rows) {
        const expiresAt = Number(row.expires_at)
        if (expiresAt > now) {
          current.set(row.key, { count: row.count, blockedUntil: Number(row.blocked_until), expiresAt })
        }
      }
      const { writes, result } = change(current)
      const upserts = [...writes].filter((w): w is [string, ThrottleCounter] => w[1] !== null)
      const deletes = [...writes].filter(([, c]) => c === null).map(([key]) => key)
      if (upserts.length > 0) {
        await trx
          .insertInto('throttle_counters')
          .values(
            upserts.map(([key, c]) => ({
              key,
              count: c.count,
              blocked_until: c.blockedUntil,
              expires_at: c.expiresAt,
            })),
          )
          .onConflict((oc) =>
            oc.column('key').doUpdateSet((eb) => ({
              count: eb.ref('excluded.count'),
              blocked_until: eb.ref('excluded.blocked_until'),
              expires_at: eb.ref('excluded.expires_at'),
            })),
          )
          .execute()
      }
      if (deletes.length > 0) await trx.deleteFrom('throttle_counters').where('key', 'in', deletes).execute()
      return result
    })
  }

  async prune(now: number): Promise<number> {
    const result = await this.#db
      .deleteFrom('throttle_counters')
      .where('expires_at', '<=', now)
      .executeTakeFirst()
    return Number(result.numDeletedRows)
  }
}
