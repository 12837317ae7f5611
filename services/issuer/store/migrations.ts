/**
 * The issuer's schema, one set of migrations for SQLite and PostgreSQL. Times are integer milliseconds
 * (`bigint`: 64-bit in both); the only dialect difference is how the revocation cursor counts.
 */
import { type Kysely, type Migration, sql } from 'kysely'
import { dialectOf } from '../../../lib/db.js'

const isPostgres = (db: Kysely<unknown>) => dialectOf(db) === 'postgres'

export const issuerMigrations: Record<string, Migration> = {
  '0001-users-sessions-revocations': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('users')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('email', 'text', (c) => c.notNull().unique())
        .addColumn('password_hash', 'text', (c) => c.notNull())
        .addColumn('roles', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute()

      await db.schema
        .createTable('sessions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('client_id', 'text', (c) => c.notNull())
        .addColumn('csrf_hash', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('last_used_at', 'bigint', (c) => c.notNull())
        .addColumn('idle_expires_at', 'bigint', (c) => c.notNull())
        .addColumn('absolute_expires_at', 'bigint', (c) => c.notNull())
        .addColumn('revoked_at', 'bigint')
        .addColumn('revoked_reason', 'text')
        .execute()
      await db.schema.createIndex('sessions_user_id').on('sessions').column('user_id').execute()

      await db.schema
        .createTable('refresh_tokens')
        .addColumn('token_hash', 'text', (c) => c.primaryKey())
        .addColumn('session_id', 'text', (c) => c.notNull().references('sessions.id').onDelete('cascade'))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('superseded_at', 'bigint')
        .execute()
      await db.schema
        .createIndex('refresh_tokens_session_id')
        .on('refresh_tokens')
        .column('session_id')
        .execute()

      const postgres = isPostgres(db)
      await db.schema
        .createTable('revocation_events')
        .addColumn('cursor', postgres ? 'bigint' : 'integer', (c) =>
          postgres ? c.primaryKey().generatedAlwaysAsIdentity() : c.primaryKey().autoIncrement(),
        )
        .addColumn('type', 'text', (c) => c.notNull().check(sql`type in ('session', 'user', 'token', 'key')`))
        .addColumn('session_id', 'text')
        .addColumn('user_id', 'text')
        .addColumn('jti', 'text')
        .addColumn('kid', 'text')
        .addColumn('issued_before', 'bigint', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .execute()
      await db.schema
        .createIndex('revocation_events_expires_at')
        .on('revocation_events')
        .column('expires_at')
        .execute()
    },
  },
  '0002-signing-keys': {
    // The key set of issuers that share a database (PostgreSQL): one row per key, the private JWK sealed
    // with KEY_ENCRYPTION_KEY, and one revision counter every instance polls to notice a change. The
    // tables exist on SQLite too (same schema everywhere), where keys stay in keyset.json.
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('signing_keys')
        .addColumn('kid', 'text', (c) => c.primaryKey())
        .addColumn('state', 'text', (c) =>
          c.notNull().check(sql`state in ('next', 'active', 'retired', 'revoked')`),
        )
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('activated_at', 'bigint')
        .addColumn('retired_at', 'bigint')
        .addColumn('revoked_at', 'bigint')
        .addColumn('remove_at', 'bigint')
        .addColumn('sealed_private_key', 'text', (c) => c.notNull())
        .execute()
      await db.schema
        .createTable('key_set_revision')
        .addColumn('id', 'integer', (c) => c.primaryKey().check(sql`id = 1`))
        .addColumn('revision', 'bigint', (c) => c.notNull())
        .execute()
      await sql`insert into key_set_revision (id, revision) values (1, 0)`.execute(db)
    },
  },
  '0003-throttle-counters': {
    // The login and registration throttles' counters (store/throttle-counters.ts): shared by instances on
    // one database, kept across restarts. Expired rows are deleted by the throttles as they go.
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('throttle_counters')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('count', 'integer', (c) => c.notNull())
        .addColumn('blocked_until', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .execute()
      await db.schema
        .createIndex('throttle_counters_expires_at')
        .on('throttle_counters')
        .column('expires_at')
        .execute()
    },
  },
  '0004-oauth-clients': {
    // Registered OAuth clients (service identities, store/clients.ts): their secret only as a SHA-256
    // hash, their public keys for private_key_jwt, and the `jti`s of client assertions already used (kept
    // until the assertion expires, so a replay is refused on every instance sharing the database).
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('oauth_clients')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('auth_method', 'text', (c) =>
          c.notNull().check(sql`auth_method in ('client_secret', 'private_key_jwt')`),
        )
        .addColumn('secret_hash', 'text')
        .addColumn('jwks', 'text')
        .addColumn('jwks_uri', 'text')
        .addColumn('grant_types', 'text', (c) => c.notNull())
        .addColumn('scopes', 'text', (c) => c.notNull())
        .addColumn('audiences', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addColumn('disabled_at', 'bigint')
        .execute()
      await db.schema
        .createTable('client_assertion_jtis')
        .addColumn('client_id', 'text', (c) => c.notNull())
        .addColumn('jti', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('client_assertion_jtis_pk', ['client_id', 'jti'])
        .execute()
      await db.schema
        .createIndex('client_assertion_jtis_expires_at')
        .on('client_assertion_jtis')
        .column('expires_at')
        .execute()
    },
  },
  '0005-email-codes-identities': {
    // E-mail login codes (one live code per address, its hash alone) and external identities linked to
    // accounts (issue 16). A user's links go with the user.
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('email_codes')
        .addColumn('email', 'text', (c) => c.primaryKey())
        .addColumn('code_hash', 'text', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .execute()
      await db.schema.createIndex('email_codes_expires_at').on('email_codes').column('expires_at').execute()
      await db.schema
        .createTable('external_identities')
        .addColumn('issuer', 'text', (c) => c.notNull())
        .addColumn('subject', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('email', 'text')
        .addColumn('linked_by', 'text', (c) =>
          c.notNull().check(sql`linked_by in ('email', 'user', 'admin')`),
        )
        .addColumn('linked_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('external_identities_pk', ['issuer', 'subject'])
        .execute()
      await db.schema
        .createIndex('external_identities_user_id')
        .on('external_identities')
        .column('user_id')
        .execute()
    },
  },
  '0006-disabled-users-client-services': {
    // Issue 15. A disabled user logs in by no method and refreshes nothing (null while enabled). A client's
    // service: the gateway upstream it runs as, whose assertions it may exchange (null: none).
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('users').addColumn('disabled_at', 'bigint').execute()
      await db.schema.alterTable('oauth_clients').addColumn('service', 'text').execute()
    },
  },
  '0007-current-refresh-tokens': {
    // A session keeps every refresh token it ever had (presenting a superseded one is reuse), so the
    // session-id index grows with each refresh; rotation looks up only the current ones. Without this
    // index every refresh walked all of its session's old tokens.
    async up(db: Kysely<unknown>) {
      await db.schema
        .createIndex('refresh_tokens_current')
        .on('refresh_tokens')
        .column('session_id')
        .where(sql.ref('superseded_at'), 'is', null)
        .execute()
    },
  },
}
