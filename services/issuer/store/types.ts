/**
 * What the issuer keeps in its database, and the interfaces every part of the issuer reaches it through:
 * one per aggregate (users, sessions, revocations, key set, exclusive tasks), composed into IssuerStore.
 * One Kysely implementation of each serves SQLite and PostgreSQL. Times are integer milliseconds since the
 * epoch.
 */

export interface UserRecord {
  /** A UUID; the `sub` of the user's tokens. */
  id: string
  /** Normalised (trimmed, NFC, lower case). */
  email: string
  passwordHash: string
  roles: string[]
  createdAt: number
  updatedAt: number
}

export type SessionRevocationReason = 'logout' | 'logout_all' | 'admin' | 'password_change' | 'refresh_reuse'

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

export type RevocationType = 'session' | 'user' | 'token' | 'key'

/**
 * A revocation verifiers must apply until `expiresAt`, when every token it affects has expired anyway.
 * `issuedBefore` (ms) bounds the tokens affected: those whose `iat` is earlier.
 */
export interface RevocationEvent {
  type: RevocationType
  sessionId?: string | null
  userId?: string | null
  jti?: string | null
  kid?: string | null
  issuedBefore: number
  createdAt: number
  expiresAt: number
}

export interface StoredRevocationEvent extends RevocationEvent {
  /** Position in the feed: strictly increasing. */
  cursor: number
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
  recordRevocation(event: RevocationEvent): Promise<StoredRevocationEvent>
  /** Events after `cursor`, oldest first. */
  listRevocations(afterCursor: number, limit: number): Promise<StoredRevocationEvent[]>
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
  /** True when the database answers. */
  ping(): Promise<boolean>
  close(): Promise<void>
}
