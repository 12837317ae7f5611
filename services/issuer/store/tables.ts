/**
 * The issuer's tables as Kysely sees them, and how their rows become the store's records. Times are integer
 * milliseconds (`bigint`; PostgreSQL's int8 arrives as a number, see lib/db.ts); roles are JSON text.
 */
import type { Generated, Kysely, Selectable } from 'kysely'
import { dialectOf } from '../../../lib/db.js'
import type {
  SealedKeyRecord,
  SessionRevocationReason,
  SessionRecord,
  StoredRevocationEvent,
  UserRecord,
} from './types.js'

export interface UsersTable {
  id: string
  email: string
  password_hash: string
  roles: string
  created_at: number
  updated_at: number
}

export interface SessionsTable {
  id: string
  user_id: string
  client_id: string
  csrf_hash: string
  created_at: number
  last_used_at: number
  idle_expires_at: number
  absolute_expires_at: number
  revoked_at: number | null
  revoked_reason: string | null
}

export interface RefreshTokensTable {
  token_hash: string
  session_id: string
  created_at: number
  superseded_at: number | null
}

export interface RevocationEventsTable {
  cursor: Generated<number>
  type: string
  session_id: string | null
  user_id: string | null
  jti: string | null
  kid: string | null
  issued_before: number
  created_at: number
  expires_at: number
}

export interface SigningKeysTable {
  kid: string
  state: string
  created_at: number
  activated_at: number | null
  retired_at: number | null
  revoked_at: number | null
  remove_at: number | null
  sealed_private_key: string
}

/** One row (`id = 1`): bumped by every change of `signing_keys`. */
export interface KeySetRevisionTable {
  id: number
  revision: number
}

export interface IssuerTables {
  users: UsersTable
  sessions: SessionsTable
  refresh_tokens: RefreshTokensTable
  revocation_events: RevocationEventsTable
  signing_keys: SigningKeysTable
  key_set_revision: KeySetRevisionTable
}

/** The one database handle every repository of the issuer shares (or a transaction on it). */
export type IssuerDb = Kysely<IssuerTables>

/** True on PostgreSQL, where several instances may share the database; asked of handles and transactions. */
export function onPostgres(db: IssuerDb): boolean {
  return dialectOf(db as Kysely<unknown>) === 'postgres'
}

/** A users row as a record. */
export function toUser(row: Selectable<UsersTable>): UserRecord {
  return {
    id: row.id,
    email: row.email,
    passwordHash: row.password_hash,
    roles: JSON.parse(row.roles) as string[],
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  }
}

export function toSession(row: Selectable<SessionsTable>): SessionRecord {
  return {
    id: row.id,
    userId: row.user_id,
    clientId: row.client_id,
    csrfHash: row.csrf_hash,
    createdAt: Number(row.created_at),
    lastUsedAt: Number(row.last_used_at),
    idleExpiresAt: Number(row.idle_expires_at),
    absoluteExpiresAt: Number(row.absolute_expires_at),
    revokedAt: row.revoked_at === null ? null : Number(row.revoked_at),
    revokedReason: row.revoked_reason as SessionRevocationReason | null,
  }
}

export function toEvent(row: Selectable<RevocationEventsTable>): StoredRevocationEvent {
  return {
    cursor: Number(row.cursor),
    type: row.type as StoredRevocationEvent['type'],
    sessionId: row.session_id,
    userId: row.user_id,
    jti: row.jti,
    kid: row.kid,
    issuedBefore: Number(row.issued_before),
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
  }
}

const optionalTime = (ms: number | null) => (ms === null ? null : Number(ms))

export function toSealedKey(row: Selectable<SigningKeysTable>): SealedKeyRecord {
  return {
    kid: row.kid,
    state: row.state as SealedKeyRecord['state'],
    createdAt: Number(row.created_at),
    activatedAt: optionalTime(row.activated_at),
    retiredAt: optionalTime(row.retired_at),
    revokedAt: optionalTime(row.revoked_at),
    removeAt: optionalTime(row.remove_at),
    sealedPrivateKey: row.sealed_private_key,
  }
}

export function fromSealedKey(key: SealedKeyRecord): Selectable<SigningKeysTable> {
  return {
    kid: key.kid,
    state: key.state,
    created_at: key.createdAt,
    activated_at: key.activatedAt,
    retired_at: key.retiredAt,
    revoked_at: key.revokedAt,
    remove_at: key.removeAt,
    sealed_private_key: key.sealedPrivateKey,
  }
}
