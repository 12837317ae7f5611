/**
 * External identities linked to keygate accounts (table `external_identities`, migration
 * 0005-email-codes-identities): (issuer, subject) is the key, so one external identity belongs to at most
 * one account; an account may have several (one per provider, or more).
 */
import type { Selectable } from 'kysely'
import { isUniqueViolation } from './users.js'
import type { ExternalIdentitiesTable, IssuerDb } from './tables.js'
import { IdentityLinkedElsewhereError, type IdentityStore, type LinkedIdentity } from './types.js'

/** Linked identities on the issuer's database. */
export class IdentityRepository implements IdentityStore {
  readonly #db: IssuerDb

  constructor(db: IssuerDb) {
    this.#db = db
  }

  async find(issuer: string, subject: string): Promise<LinkedIdentity | undefined> {
    const row = await this.#db
      .selectFrom('external_identities')
      .selectAll()
      .where('issuer', '=', issuer)
      .where('subject', '=', subject)
      .executeTakeFirst()
    return row && toIdentity(row)
  }

  async link(identity: LinkedIdentity): Promise<void> {
    try {
      await this.#db
        .insertInto('external_identities')
        .values({
          issuer: identity.issuer,
          subject: identity.subject,
          user_id: identity.userId,
          email: identity.email,
          linked_by: identity.linkedBy,
          linked_at: identity.linkedAt,
        })
        .execute()
    } catch (err) {
      if (!isUniqueViolation(err)) throw err
      const existing = await this.find(identity.issuer, identity.subject)
      if (existing?.userId !== identity.userId) throw new IdentityLinkedElsewhereError()
    }
  }

  async listForUser(userId: string): Promise<LinkedIdentity[]> {
    const rows = await this.#db
      .selectFrom('external_identities')
      .selectAll()
      .where('user_id', '=', userId)
      .orderBy('linked_at')
      .orderBy('issuer')
      .orderBy('subject')
      .execute()
    return rows.map(toIdentity)
  }

  async unlink(userId: string, issuer: string, subject: string): Promise<boolean> {
    const result = await this.#db
      .deleteFrom('external_identities')
      .where('user_id', '=', userId)
      .where('issuer', '=', issuer)
      .where('subject', '=', subject)
      .executeTakeFirst()
    return Number(result.numDeletedRows) === 1
  }
}

function toIdentity(row: Selectable<ExternalIdentitiesTable>): LinkedIdentity {
  return {
    issuer: row.issuer,
    subject: row.subject,
    userId: row.user_id,
    email: row.email,
    linkedBy: row.linked_by as LinkedIdentity['linkedBy'],
    linkedAt: Number(row.linked_at),
  }
}
