/**
 * The issuer's tables as Kysely sees them, and how their rows become the store's records. Times are integer
 * milliseconds (`bigint`; PostgreSQL's int8 arrives as a number, see lib/db.ts); roles are JSON text.
 */
import type { Generated, Insertable, Kysely, Selectable } from 'kysely'
import type { RecordedRevocationEvent, RevocationEvent } from '@keygate/fastify-auth'
import { dialectOf } from '../../../lib/db.js'
import type { SealedKeyRecord, SessionRevocationReason, SessionRecord, UserRecord } from './types.js'

export interface UsersTable {
  id: string
  email: string
  password_hash: string
  roles: string
  created_at: number
  updated_at: number
  disabled_at: number | null
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

/** A throttle's counter (store/throttle-counters.ts); times in milliseconds. */
export interface ThrottleCountersTable {
  key: string
  count: number
  blocked_until: number
  expires_at: number
}

/** A pending e-mail login code (store/email-codes.ts); one row per address. */
export interface EmailCodesTable {
  email: string
  code_hash: string
  attempts: number
  created_at: number
  expires_at: number
}

/** An external identity linked to an account (store/identities.ts). */
export interface ExternalIdentitiesTable {
  issuer: string
  subject: string
  user_id: string
  email: string | null
  linked_by: string
  linked_at: number
}

/** A registered OAuth client (store/clients.ts); lists are JSON text, times milliseconds. */
export interface OAuthClientsTable {
  id: string
  name: string
  auth_method: string
  secret_hash: string | null
  jwks: string | null
  jwks_uri: string | null
  grant_types: string
  scopes: string
  audiences: string
  created_at: number
  updated_at: number
  disabled_at: number | null
  service: string | null
}

/** A client assertion's `jti`, kept until the assertion expires (RFC 7523 §3: single use). */
export interface ClientAssertionJtisTable {
  client_id: string
  jti: string
  expires_at: number
}

export interface IssuerTables {
  users: UsersTable
  sessions: SessionsTable
  refresh_tokens: RefreshTokensTable
  revocation_events: RevocationEventsTable
  signing_keys: SigningKeysTable
  key_set_revision: KeySetRevisionTable
  throttle_counters: ThrottleCountersTable
  email_codes: EmailCodesTable
  external_identities: ExternalIdentitiesTable
  oauth_clients: OAuthClientsTable
  client_assertion_jtis: ClientAssertionJtisTable
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
    disabledAt: row.disabled_at === null ? null : Number(row.disabled_at),
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

/**
 * A stored event (one row for every type: the id its type names, the others null). A row without its id,
 * which keygate never writes, reads as an empty id, which every verifier refuses, rather than stopping the
 * feed. `issued_before` matters to user revocations alone; the others store their `createdAt` there.
 */
export function toEvent(row: Selectable<RevocationEventsTable>): RecordedRevocationEvent {
  const place = {
    cursor: Number(row.cursor),
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
  }
  switch (row.type) {
    case 'session':
      return { type: 'session', sessionId: row.session_id ?? '', ...place }
    case 'user':
      return { type: 'user', subject: row.user_id ?? '', issuedBefore: Number(row.issued_before), ...place }
    case 'token':
      return { type: 'token', tokenId: row.jti ?? '', ...place }
    case 'key':
      return { type: 'key', kid: row.kid ?? '', ...place }
    default:
      // The table's check constraint admits the four types alone.
      throw new Error(`keygate: revocation event ${place.cursor} has an unknown type`)
  }
}

/** The row of an event to record (see `toEvent`). */
export function fromEvent(event: RevocationEvent): Insertable<RevocationEventsTable> {
  const row = {
    type: event.type,
    session_id: null,
    user_id: null,
    jti: null,
    kid: null,
    issued_before: event.createdAt,
    created_at: event.createdAt,
    expires_at: event.expiresAt,
  }
  switch (event.type) {
    case 'session':
      return { ...row, session_id: event.sessionId }
    case 'user':
      return { ...row, user_id: event.subject, issued_before: event.issuedBefore }
    case 'token':
      return { ...row, jti: event.tokenId }
    case 'key':
      return { ...row, kid: event.kid }
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
