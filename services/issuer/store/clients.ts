/**
 * Registered OAuth clients and the `jti`s of the client assertions they used, on the issuer's database.
 * Lists (grant types, scopes, audiences) and the client's JWKS are JSON text; times are milliseconds.
 */
import type { Selectable } from 'kysely'
import type { IssuerDb, OAuthClientsTable } from './tables.js'
import type { ClientAuthMethod, ClientRecord, ClientStore } from './types.js'
import { isUniqueViolation } from './users.js'

/** Registered clients on the issuer's database. */
export class ClientRepository implements ClientStore {
  readonly #db: IssuerDb

  constructor(db: IssuerDb) {
    this.#db = db
  }

  async createClient(client: ClientRecord): Promise<void> {
    await this.#db
      .insertInto('oauth_clients')
      .values({
        id: client.id,
        name: client.name,
        auth_method: client.authMethod,
        secret_hash: client.secretHash,
        jwks: client.jwks === null ? null : JSON.stringify(client.jwks),
        jwks_uri: client.jwksUri,
        grant_types: JSON.stringify(client.grantTypes),
        scopes: JSON.stringify(client.scopes),
        audiences: JSON.stringify(client.audiences),
        created_at: client.createdAt,
        updated_at: client.updatedAt,
        disabled_at: client.disabledAt,
        service: client.service,
      })
      .execute()
  }

  async findClient(id: string): Promise<ClientRecord | undefined> {
    const row = await this.#db.selectFrom('oauth_clients').selectAll().where('id', '=', id).executeTakeFirst()
    return row && toClient(row)
  }

  async listClients(page: { limit: number; offset: number }): Promise<ClientRecord[]> {
    const rows = await this.#db
      .selectFrom('oauth_clients')
      .selectAll()
      .orderBy('created_at')
      .orderBy('id')
      .limit(page.limit)
      .offset(page.offset)
      .execute()
    return rows.map(toClient)
  }

  async setClientService(id: string, service: string | null, now: number): Promise<boolean> {
    const result = await this.#db
      .updateTable('oauth_clients')
      .set({ service, updated_at: now })
      .where('id', '=', id)
      .executeTakeFirst()
    return Number(result.numUpdatedRows) === 1
  }

  async setClientSecretHash(id: string, secretHash: string, now: number): Promise<boolean> {
    const result = await this.#db
      .updateTable('oauth_clients')
      .set({ secret_hash: secretHash, updated_at: now })
      .where('id', '=', id)
      .executeTakeFirst()
    return Number(result.numUpdatedRows) === 1
  }

  async disableClient(id: string, now: number): Promise<boolean> {
    const found = await this.findClient(id)
    if (!found) return false
    if (found.disabledAt === null) {
      await this.#db
        .updateTable('oauth_clients')
        .set({ disabled_at: now, updated_at: now })
        .where('id', '=', id)
        .where('disabled_at', 'is', null)
        .execute()
    }
    return true
  }

  async useAssertionId(clientId: string, jti: string, expiresAt: number, now: number): Promise<boolean> {
    await this.#db.deleteFrom('client_assertion_jtis').where('expires_at', '<=', now).execute()
    try {
      await this.#db
        .insertInto('client_assertion_jtis')
        .values({ client_id: clientId, jti, expires_at: expiresAt })
        .execute()
      return true
    } catch (err) {
      // The primary key (client, jti) makes the check and the record one step on every instance.
      if (isUniqueViolation(err)) return false
      throw err
    }
  }
}

function toClient(row: Selectable<OAuthClientsTable>): ClientRecord {
  return {
    id: row.id,
    name: row.name,
    authMethod: row.auth_method as ClientAuthMethod,
    secretHash: row.secret_hash,
    jwks: row.jwks === null ? null : (JSON.parse(row.jwks) as ClientRecord['jwks']),
    jwksUri: row.jwks_uri,
    grantTypes: JSON.parse(row.grant_types) as string[],
    scopes: JSON.parse(row.scopes) as string[],
    audiences: JSON.parse(row.audiences) as string[],
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    disabledAt: row.disabled_at === null ? null : Number(row.disabled_at),
    service: row.service,
  }
}
