/**
 * The signing-key set shared by issuer instances on one database: replaced as a whole under the revision
 * row's lock, with a revision every instance polls to notice a change. Private keys arrive sealed
 * (keys/key-sealing.ts); this file never sees them in the clear.
 */
import { writeTransaction } from '../../../lib/db.js'
import { fromSealedKey, type IssuerDb, onPostgres, toSealedKey } from './tables.js'
import type { KeySetChange, KeySetStore, StoredKeySet } from './types.js'

/** The key set on the issuer's database. */
export class KeySetRepository implements KeySetStore {
  readonly #db: IssuerDb
  readonly #postgres: boolean

  constructor(db: IssuerDb) {
    this.#db = db
    this.#postgres = onPostgres(db)
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
}

/** The key set; on PostgreSQL `lock` takes the revision row's lock first, serialising every change. */
async function readKeySet(db: IssuerDb, lock: boolean): Promise<StoredKeySet> {
  const revision = await db
    .selectFrom('key_set_revision')
    .select('revision')
    .where('id', '=', 1)
    .$if(lock, (qb) => qb.forUpdate())
    .executeTakeFirstOrThrow()
  const rows = await db.selectFrom('signing_keys').selectAll().orderBy('created_at').orderBy('kid').execute()
  return { keys: rows.map(toSealedKey), revision: Number(revision.revision) }
}
