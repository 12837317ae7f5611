/**
 * Pending e-mail login codes (table `email_codes`, migration 0005-email-codes-identities): one row per
 * address holding the code's hash, how many wrong tries it has had, and its expiry. Checking and spending a
 * code is one write transaction, so two concurrent tries cannot both use it or both escape the count.
 */
import { writeTransaction } from '../../../lib/db.js'
import { type IssuerDb, onPostgres } from './tables.js'
import type { EmailCodeCheck, EmailCodeRecord, EmailCodeStore } from './types.js'

/** E-mail codes on the issuer's database. */
export class EmailCodeRepository implements EmailCodeStore {
  readonly #db: IssuerDb

  constructor(db: IssuerDb) {
    this.#db = db
  }

  async put(code: EmailCodeRecord): Promise<void> {
    const row = {
      email: code.email,
      code_hash: code.codeHash,
      attempts: 0,
      created_at: code.createdAt,
      expires_at: code.expiresAt,
    }
    await this.#db
      .insertInto('email_codes')
      .values(row)
      .onConflict((oc) =>
        oc.column('email').doUpdateSet({
          code_hash: row.code_hash,
          attempts: 0,
          created_at: row.created_at,
          expires_at: row.expires_at,
        }),
      )
      .execute()
  }

  consume(
    email: string,
    matches: (storedHash: string) => boolean,
    now: number,
    maxAttempts: number,
  ): Promise<EmailCodeCheck> {
    return writeTransaction(this.#db, async (trx) => {
      const row = await trx
        .selectFrom('email_codes')
        .selectAll()
        .where('email', '=', email)
        .$if(onPostgres(trx), (qb) => qb.forUpdate())
        .executeTakeFirst()
      if (!row) return 'none'
      const spend = () => trx.deleteFrom('email_codes').where('email', '=', email).execute()
      if (Number(row.expires_at) <= now || row.attempts >= maxAttempts) {
        await spend()
        return 'none'
      }
      if (matches(row.code_hash)) {
        await spend()
        return 'matched'
      }
      if (row.attempts + 1 >= maxAttempts) await spend()
      else {
        await trx
          .updateTable('email_codes')
          .set({ attempts: row.attempts + 1 })
          .where('email', '=', email)
          .execute()
      }
      return 'mismatch'
    })
  }

  async prune(now: number): Promise<number> {
    const result = await this.#db.deleteFrom('email_codes').where('expires_at', '<=', now).executeTakeFirst()
    return Number(result.numDeletedRows)
  }
}
