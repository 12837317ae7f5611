/**
 * User accounts: e-mail (unique), password hash, roles, disabled or not. Changing a password or disabling a
 * user also revokes the user's sessions and records the event, in the same transaction.
 */
import { precompile, writeTransaction } from '../../../lib/db.js'
import { insertEvent } from './revocations.js'
import { revokeAllSessions } from './sessions.js'
import { type IssuerDb, toUser } from './tables.js'
import type { RevocationEvent } from '@keygate/fastify-auth'
import { EmailTakenError, type UserRecord, type UserStore } from './types.js'

/** Users on the issuer's database. */
export class UserRepository implements UserStore {
  readonly #db: IssuerDb
  /** Every refresh reads its user: built and compiled once (see store/sessions.ts, refreshQueries). */
  readonly #findById

  constructor(db: IssuerDb) {
    this.#db = db
    this.#findById = precompile({ id: '\0id' }, ({ id }) =>
      db.selectFrom('users').selectAll().where('id', '=', id),
    )
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
          disabled_at: user.disabledAt,
        })
        .execute()
    } catch (err) {
      if (isUniqueViolation(err)) throw new EmailTakenError()
      throw err
    }
  }

  async findUserById(id: string): Promise<UserRecord | undefined> {
    const row = (await this.#db.executeQuery(this.#findById.bind({ id }))).rows[0]
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

  async disableUser(userId: string, now: number, event: RevocationEvent): Promise<boolean> {
    return writeTransaction(this.#db, async (trx) => {
      const result = await trx
        .updateTable('users')
        .set({ disabled_at: now, updated_at: now })
        .where('id', '=', userId)
        .where('disabled_at', 'is', null)
        .executeTakeFirst()
      if (Number(result.numUpdatedRows) !== 1) return false
      await revokeAllSessions(trx, userId, 'disabled', now)
      await insertEvent(trx, event)
      return true
    })
  }

  async enableUser(userId: string, now: number): Promise<boolean> {
    const result = await this.#db
      .updateTable('users')
      .set({ disabled_at: null, updated_at: now })
      .where('id', '=', userId)
      .executeTakeFirst()
    return Number(result.numUpdatedRows) === 1
  }
}

/** Whether a write failed on a unique or primary key (PostgreSQL and SQLite codes). */
export function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: string }).code
  // PostgreSQL unique_violation, SQLite's extended constraint code.
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY'
}
