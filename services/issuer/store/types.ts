/**
 * What the issuer keeps in its database, and the interfaces every part of the issuer reaches it through:
 * one per aggregate (users, sessions, revocations, key set, exclusive tasks), composed into IssuerStore.
 * One Kysely implementation of each serves SQLite and PostgreSQL. Times are integer milliseconds since the
 * epoch.
 */
import type { RecordedRevocationEvent, RevocationEvent } from '@keygate/fastify-auth'

export interface UserRecord {
  /** A UUID; the `sub` of the user's tokens. */
  id: string
  /** Normalised (trimmed, NFC, lower case). */
  email: string
  passwordHash: string
  roles: string[]
  createdAt: number
  updatedAt: number
  /** When an admin disabled the account; null while it may log in. */
  disabledAt: number | null
}

export type SessionRevocationReason =
  'logout' | 'logout_all' | 'admin' | 'password_change' | 'refresh_reuse' | 'disabled'

export interface SessionRecord {
  /** A UUID; the `sid` of the session's tokens. */
  id: string
  userId: string
  clientId: string
  /** SHA-256 of the session's CSRF token. */
  csrfHash: string
  createdAt: number
  lastUsedAt: number
  idleExpiresAt: number
  absoluteExpiresAt: number
  revokedAt: number | null
  revokedReason: SessionRevocationReason | null
}

export interface RefreshTokenRecord {
  /** SHA-256 of the token; the token itself is never stored. */
  tokenHash: string
  sessionId: string
  createdAt: number
  /** When a newer token replaced it; null while it is current. */
  supersededAt: number | null
}

/** A refresh token together with its session. */
export interface RefreshTokenWithSession {
  token: RefreshTokenRecord
  session: SessionRecord
}

export interface NewSession {
  id: string
  userId: string
  clientId: string
  csrfHash: string
  createdAt: number
  idleExpiresAt: number
  absoluteExpiresAt: number
}

/** A refresh-token rotation: the presented token is superseded and `newTokenHash` becomes current. */
export interface RefreshRotation {
  sessionId: string
  presentedHash: string
  newTokenHash: string
  now: number
  idleExpiresAt: number
}

/**
 * A signing key as a shared database keeps it: its schedule in columns, its private JWK sealed (encrypted
 * and authenticated, see keys/key-sealing.ts). Times are milliseconds; null where not reached.
 */
export interface SealedKeyRecord {
  kid: string
  state: 'next' | 'active' | 'retired' | 'revoked'
  createdAt: number
  activatedAt: number | null
  retiredAt: number | null
  revokedAt: number | null
  removeAt: number | null
  sealedPrivateKey: string
}

/** The key set in the database with its revision, which every change increments. */
export interface StoredKeySet {
  keys: SealedKeyRecord[]
  revision: number
}

/**
 * A change to the stored key set, computed from the freshest copy under the set's lock: `keys` replaces
 * the set (undefined: leave it unchanged); `result` is handed back to the caller.
 */
export type KeySetChange<R> = (current: StoredKeySet) => Promise<{ keys?: SealedKeyRecord[]; result: R }>

/** Work that at most one issuer instance sharing a database may do at a time. */
export type ExclusiveTask = 'key-maintenance'

/** Thrown by `createUser` when the e-mail already has an account. */
export class EmailTakenError extends Error {
  constructor() {
    super('e-mail already registered')
    this.name = 'EmailTakenError'
  }
}

/**
 * A throttle's counter (login failures, registrations) as the store keeps it. A counter past `expiresAt`
 * is read as zero; `blockedUntil` (0: not blocked) never lies beyond `expiresAt`.
 */
export interface ThrottleCounter {
  count: number
  blockedUntil: number
  expiresAt: number
}

/** The counters to write back: a counter, or null to delete it. */
export type ThrottleCounterWrites = ReadonlyMap<string, ThrottleCounter | null>

/**
 * The throttles' counters, shared by every issuer instance on the database and kept across restarts
 * (store/throttle-counters.ts). The policy lives in the throttles; this only reads and writes atomically.
 */
export interface ThrottleCounters {
  /**
   * In one write transaction: reads the counters of `keys` (absent or expired: zero) while holding them
   * against other instances, and writes what `change` returns.
   */
  update<R>(
    keys: readonly string[],
    now: number,
    change: (current: ReadonlyMap<string, ThrottleCounter>) => { writes: ThrottleCounterWrites; result: R },
  ): Promise<R>
  /** Deletes the counters expired at `now`; returns how many. */
  prune(now: number): Promise<number>
}

/** A pending e-mail login code: only its hash is kept, one per address (a new one replaces it). */
export interface EmailCodeRecord {
  email: string
  codeHash: string
  createdAt: number
  expiresAt: number
}

/** What `consume` found: the code matched (and is gone), or it did not (see EmailCodeStore). */
export type EmailCodeCheck = 'matched' | 'mismatch' | 'none'

/** Pending e-mail login codes (store/email-codes.ts). */
export interface EmailCodeStore {
  /** Stores the address's code, replacing (invalidating) any earlier one. */
  put(code: EmailCodeRecord): Promise<void>
  /**
   * In one write transaction: compares `codeHash` with the address's live code (`matches`, constant
   * time). A match deletes the code (single use); a mismatch counts an attempt and deletes the code at
   * `maxAttempts`. `none`: no live code.
   */
  consume(
    email: string,
    matches: (storedHash: string) => boolean,
    now: number,
    maxAttempts: number,
  ): Promise<EmailCodeCheck>
  /** Deletes codes expired at `now`; returns how many. */
  prune(now: number): Promise<number>
}

/** An external identity (its issuer and subject) linked to a keygate account. */
export interface LinkedIdentity {
  issuer: string
  subject: string
  userId: string
  /** The e-mail the external issuer stated when the link was made, if any. */
  email: string | null
  /** How the link was made: `email` (a verified e-mail claim), `user` (logged in), `admin`. */
  linkedBy: 'email' | 'user' | 'admin'
  linkedAt: number
}

/** Thrown by `link` when the identity is already linked to another account. */
export class IdentityLinkedElsewhereError extends Error {
  constructor() {
    super('external identity linked to another account')
    this.name = 'IdentityLinkedElsewhereError'
  }
}

/** External identities linked to accounts (store/identities.ts). */
export interface IdentityStore {
  find(issuer: string, subject: string): Promise<LinkedIdentity | undefined>
  /** Links an identity; no-op when it is linked to this user; IdentityLinkedElsewhereError otherwise. */
  link(identity: LinkedIdentity): Promise<void>
  listForUser(userId: string): Promise<LinkedIdentity[]>
  /** Removes one of a user's links; false when there was none. */
  unlink(userId: string, issuer: string, subject: string): Promise<boolean>
}

/** How a registered client proves who it is at the token, revocation and introspection endpoints. */
export type ClientAuthMethod = 'client_secret' | 'private_key_jwt'

/** A registered OAuth client: a service identity (oauth/clients.ts). */
export interface ClientRecord {
  /** `client_id`, also the `sub` of the tokens it gets for itself. */
  id: string
  name: string
  authMethod: ClientAuthMethod
  /** SHA-256 (base64url) of the secret; null for private_key_jwt clients. The secret is never stored. */
  secretHash: string | null
  /** The client's public keys (a JWKS as JSON) or where to fetch them, for private_key_jwt. */
  jwks: { keys: Record<string, unknown>[] } | null
  jwksUri: string | null
  grantTypes: string[]
  scopes: string[]
  /** The resource servers (token audiences) the client may ask tokens for. */
  audiences: string[]
  createdAt: number
  updatedAt: number
  /** When it was disabled; null while it may authenticate. */
  disabledAt: number | null
  /**
   * The gateway upstream (assertion `aud`) the client runs as: the gateway's assertions addressed to it may
   * be the `subject_token` of its token exchanges. Null for a client that is no service behind the gateway.
   */
  service: string | null
}

/** Registered clients and the client assertions they used (store/clients.ts). */
export interface ClientStore {
  createClient(client: ClientRecord): Promise<void>
  findClient(id: string): Promise<ClientRecord | undefined>
  /** Clients ordered by creation time. */
  listClients(page: { limit: number; offset: number }): Promise<ClientRecord[]>
  /** Sets the service the client runs as; false when there is no such client. */
  setClientService(id: string, service: string | null, now: number): Promise<boolean>
  /** Replaces the secret hash; false when there is no such client. */
  setClientSecretHash(id: string, secretHash: string, now: number): Promise<boolean>
  /** Marks the client disabled (once); false when there is no such client. */
  disableClient(id: string, now: number): Promise<boolean>
  /**
   * Records a client assertion's `jti` until `expiresAt`; false when the client already used it (a
   * replay). Deletes expired entries as it goes.
   */
  useAssertionId(clientId: string, jti: string, expiresAt: number, now: number): Promise<boolean>
}

/** Users: accounts, their e-mails, password hashes and roles (store/users.ts). */
export interface UserStore {
  /** Creates a user; throws EmailTakenError when the e-mail is taken. */
  createUser(user: UserRecord): Promise<void>
  findUserById(id: string): Promise<UserRecord | undefined>
  findUserByEmail(email: string): Promise<UserRecord | undefined>
  /** Users ordered by creation time. */
  listUsers(page: { limit: number; offset: number }): Promise<UserRecord[]>
  /** Returns false when there is no such user. */
  setUserRoles(id: string, roles: string[], now: number): Promise<boolean>
  setPasswordHash(id: string, passwordHash: string, now: number): Promise<boolean>
  /** Changes a password, revokes the user's sessions and records `event`, in one transaction. */
  changePassword(userId: string, passwordHash: string, now: number, event: RevocationEvent): Promise<void>
  /**
   * Disables an enabled user, revokes their sessions and records `event`, in one transaction; false (and
   * nothing recorded) when there is no such user or it is disabled already.
   */
  disableUser(userId: string, now: number, event: RevocationEvent): Promise<boolean>
  /** Lets a disabled user log in again; false when there is no such user. */
  enableUser(userId: string, now: number): Promise<boolean>
}

/** Sessions and their refresh tokens (store/sessions.ts). */
export interface SessionStore {
  /** Creates a session with its first refresh token. */
  createSession(session: NewSession, refreshTokenHash: string): Promise<void>
  findSession(id: string): Promise<SessionRecord | undefined>
  /** The user's sessions, newest first, revoked ones included until pruned. */
  listSessions(userId: string): Promise<SessionRecord[]>
  findRefreshToken(tokenHash: string): Promise<RefreshTokenWithSession | undefined>
  /**
   * In one write transaction: supersedes the presented token only if it is still current (the guard
   * against a concurrent refresh), supersedes the session's other current tokens, inserts the new one and
   * extends the session's idle expiry. Returns false (changing nothing) when the guard missed or the
   * session was revoked meanwhile.
   */
  rotateRefreshToken(rotation: RefreshRotation): Promise<boolean>
  /**
   * Adds another current token to a live session (the grace window for a concurrent refresh) and extends
   * its idle expiry. Returns false when the session was revoked meanwhile.
   */
  addRefreshToken(sessionId: string, tokenHash: string, now: number, idleExpiresAt: number): Promise<boolean>
  /** Revokes a live session and records `event` in the same transaction; false if it was not live. */
  revokeSession(
    id: string,
    reason: SessionRevocationReason,
    now: number,
    event: RevocationEvent,
  ): Promise<boolean>
  /** Revokes every live session of a user and records `event`; returns how many were revoked. */
  revokeUserSessions(
    userId: string,
    reason: SessionRevocationReason,
    now: number,
    event: RevocationEvent,
  ): Promise<number>
}

/** The revocation feed's events (store/revocations.ts). */
export interface RevocationStore {
  /**
   * Records an event. Every event-recording write also wakes the other issuer instances on PostgreSQL
   * (NOTIFY on `REVOCATION_CHANNEL`, sent at commit), and commits in cursor order, so a reader that has
   * seen a cursor has seen every smaller one.
   */
  recordRevocation(event: RevocationEvent): Promise<RecordedRevocationEvent>
  /** Events after `cursor`, oldest first (their cursor is their position in the feed). */
  listRevocations(afterCursor: number, limit: number): Promise<RecordedRevocationEvent[]>
  /** The highest cursor still stored, or 0. */
  latestRevocationCursor(): Promise<number>
}

/** The signing-key set shared by issuer instances (store/key-set.ts). */
export interface KeySetStore {
  /** The key set shared by issuer instances (empty until the first instance generates it). */
  readKeySet(): Promise<StoredKeySet>
  /** The key set's revision alone: cheap enough to poll every second. */
  keySetRevision(): Promise<number>
  /**
   * Applies `change` to the freshest key set while holding its lock (other instances' changes wait) and
   * bumps the revision when the keys were replaced. Returns the set as it now stands.
   */
  updateKeySet<R>(change: KeySetChange<R>): Promise<StoredKeySet & { result: R }>
}

/** Work shared out among issuer instances (store/locks.ts). */
export interface ExclusiveTasks {
  /**
   * Runs `fn` unless another instance sharing the database is running the same task (PostgreSQL advisory
   * lock, held until `fn` settles); returns whether it ran. A single-process store always runs it.
   */
  runExclusively(task: ExclusiveTask, fn: () => Promise<void>): Promise<boolean>
}

/**
 * The issuer's persistence: one repository per aggregate over one database handle (store/issuer-store.ts
 * composes them), plus what concerns the database as a whole.
 */
export interface IssuerStore extends UserStore, SessionStore, RevocationStore, KeySetStore, ExclusiveTasks {
  /**
   * Deletes what can no longer matter: sessions past their expiry or revoked for longer than
   * `revokedSessionKeepMs`, with their refresh tokens, and revocation events past `expiresAt`.
   */
  prune(now: number, revokedSessionKeepMs: number): Promise<{ sessions: number; events: number }>
  /** The login and registration throttles' counters (store/throttle-counters.ts). */
  readonly throttleCounters: ThrottleCounters
  /** Pending e-mail login codes (store/email-codes.ts). */
  readonly emailCodes: EmailCodeStore
  /** External identities linked to accounts (store/identities.ts). */
  readonly identities: IdentityStore
  /** Registered OAuth clients (store/clients.ts). */
  readonly clients: ClientStore
  /** True when the database answers. */
  ping(): Promise<boolean>
  close(): Promise<void>
}
