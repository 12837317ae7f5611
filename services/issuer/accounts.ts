/**
 * User accounts: registration, password login, password change, roles, disabling, and the admin created at
 * start.
 * Login and registration answer the same way, in about the same time, whether or not the account exists.
 * Every password hash and check goes through one bounded queue (password-hashing.ts).
 */
import { randomBytes, randomUUID } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import { KeygateError } from '../../lib/errors.js'
import { normaliseEmail, passwordAcceptable } from './credentials.js'
import type { LoginThrottle } from './login-throttle.js'
import type { IssuerMetrics } from './metrics.js'
import type { Revocations } from './feed/revocations.js'
import type { PasswordHashing } from './password-hashing.js'
import type { RegistrationThrottle } from './registration-throttle.js'
import { EmailTakenError, type IssuerStore, type UserRecord } from './store/types.js'

/** Roles of a self-registered or admin-created user unless told otherwise. */
export const DEFAULT_USER_ROLES: readonly string[] = ['user']
/** Roles of the admin created from KEYGATE_ADMIN_EMAIL/KEYGATE_ADMIN_PASSWORD. */
export const BOOTSTRAP_ADMIN_ROLES: readonly string[] = ['admin', 'user']

export interface AccountsOptions {
  store: IssuerStore
  throttle: LoginThrottle
  registrations: RegistrationThrottle
  hashing: PasswordHashing
  /** Where a password change is recorded, with the revocation of the user's tokens. */
  revocations: Revocations
  metrics: IssuerMetrics
  now: () => number
}

/** Account operations over the store. */
export class Accounts {
  readonly #o: AccountsOptions

  constructor(options: AccountsOptions) {
    this.#o = options
  }

  /** Creates an account; 400 for an invalid e-mail or password, 409 when the e-mail is taken. */
  async create(
    email: string,
    password: string,
    roles: readonly string[] = DEFAULT_USER_ROLES,
  ): Promise<UserRecord> {
    const user = await this.#newUser(acceptedEmail(email, password), password, roles)
    try {
      await this.#o.store.createUser(user)
    } catch (err) {
      if (err instanceof EmailTakenError) throw new KeygateError('KG_EMAIL_TAKEN')
      throw err
    }
    return user
  }

  /**
   * Self-registration from `address`, throttled per address (429 `KG_RATE_LIMITED`). A taken e-mail is
   * hashed and answered like a new one, so the caller learns nothing; `existing` is the account that
   * already had it (for the log: its owner is not told). Returns the normalised e-mail.
   */
  async register(
    email: string,
    password: string,
    address: string,
  ): Promise<{ email: string; created?: UserRecord; existing?: UserRecord }> {
    const normalised = acceptedEmail(email, password)
    await this.#o.registrations.count(address)
    const user = await this.#newUser(normalised, password, DEFAULT_USER_ROLES)
    try {
      await this.#o.store.createUser(user)
      return { email: normalised, created: user }
    } catch (err) {
      if (!(err instanceof EmailTakenError)) throw err
      const existing = await this.#o.store.findUserByEmail(normalised)
      return { email: normalised, ...(existing ? { existing } : {}) }
    }
  }

  async #newUser(email: string, password: string, roles: readonly string[]): Promise<UserRecord> {
    const passwordHash = await this.#o.hashing.hash(password)
    const now = this.#o.now()
    return {
      id: randomUUID(),
      email,
      passwordHash,
      roles: [...new Set(roles)],
      createdAt: now,
      updatedAt: now,
      disabledAt: null,
    }
  }

  /**
   * Checks e-mail and password, throttled per account and `address` (see login-throttle.ts). Unknown
   * accounts are checked against a dummy hash and refused exactly like a wrong password.
   */
  async authenticate(email: string, password: string, address: string): Promise<UserRecord> {
    // An e-mail that cannot be an account is throttled under its raw spelling, so it is not free to try.
    const account = normaliseEmail(email) ?? email.trim().toLowerCase()
    let attempt
    try {
      attempt = await this.#o.throttle.attempt(account, address)
    } catch (err) {
      this.#o.metrics.logins.inc({ outcome: 'throttled' })
      throw err
    }
    const user = await this.#o.store.findUserByEmail(account)
    if (!(await this.#o.hashing.verify(user?.passwordHash, password)) || !user) {
      this.#o.metrics.logins.inc({ outcome: 'invalid_credentials' })
      throw new KeygateError('KG_INVALID_CREDENTIALS')
    }
    await attempt.succeeded()
    this.#o.metrics.logins.inc({ outcome: 'success' })
    return user
  }

  /**
   * The account of an e-mail address its owner just proved to hold (an e-mail code, a verified e-mail
   * claim): the existing one, or, when `mayCreate` (REGISTRATION=open), a new one with default roles and an
   * unguessable password (so password login stays impossible for it). Undefined
   * when there is none and none may be created.
   */
  async forVerifiedEmail(email: string, mayCreate: boolean): Promise<UserRecord | undefined> {
    const existing = await this.#o.store.findUserByEmail(email)
    if (existing || !mayCreate) return existing
    const user = await this.#newUser(email, randomBytes(32).toString('base64url'), DEFAULT_USER_ROLES)
    try {
      await this.#o.store.createUser(user)
      return user
    } catch (err) {
      // Created at the same moment by another request or instance.
      if (!(err instanceof EmailTakenError)) throw err
      return this.#o.store.findUserByEmail(email)
    }
  }

  /**
   * Changes a password after checking the current one (throttled like a login), then revokes every
   * session of the user: whoever knew the old password is logged out everywhere.
   */
  async changePassword(userId: string, current: string, next: string, address: string): Promise<void> {
    const user = await this.#o.store.findUserById(userId)
    if (!user) throw new KeygateError('KG_USER_NOT_FOUND')
    const attempt = await this.#o.throttle.attempt(user.email, address)
    if (!(await this.#o.hashing.verify(user.passwordHash, current))) {
      throw new KeygateError('KG_INVALID_CREDENTIALS', { message: 'The current password is wrong' })
    }
    await attempt.succeeded()
    if (!passwordAcceptable(next)) {
      throw new KeygateError('KG_INVALID_REQUEST', {
        message: 'The password must be 8 to 128 characters long',
      })
    }
    await this.#o.revocations.recordPasswordChange(userId, await this.#o.hashing.hash(next))
  }

  async get(userId: string): Promise<UserRecord> {
    const user = await this.#o.store.findUserById(userId)
    if (!user) throw new KeygateError('KG_USER_NOT_FOUND')
    return user
  }

  list(limit: number, offset: number): Promise<UserRecord[]> {
    return this.#o.store.listUsers({ limit, offset })
  }

  /** Replaces a user's roles; they reach tokens at the next refresh. */
  async setRoles(userId: string, roles: readonly string[]): Promise<UserRecord> {
    const unique = [...new Set(roles)]
    if (!(await this.#o.store.setUserRoles(userId, unique, this.#o.now()))) {
      throw new KeygateError('KG_USER_NOT_FOUND')
    }
    return this.get(userId)
  }

  /**
   * Disables a user: no login by any method, no refresh, and every token, exchanged token and download link
   * of theirs revoked through the feed. Disabling a disabled user changes nothing.
   */
  async disable(userId: string, by: string): Promise<UserRecord> {
    // Never one's own account: another admin must, so the last admin cannot lock everyone out by mistake.
    if (userId === by) throw new KeygateError('KG_DISABLE_SELF')
    const user = await this.get(userId)
    if (user.disabledAt === null) await this.#o.revocations.recordUserDisabled(userId)
    return this.get(userId)
  }

  /** Lets a disabled user log in again (their old sessions and tokens stay revoked). */
  async enable(userId: string): Promise<UserRecord> {
    if (!(await this.#o.store.enableUser(userId, this.#o.now()))) throw new KeygateError('KG_USER_NOT_FOUND')
    return this.get(userId)
  }

  /** Creates the configured admin when both settings are given and the account does not exist yet. */
  async bootstrapAdmin(
    email: string | undefined,
    password: string | undefined,
    log: FastifyBaseLogger,
  ): Promise<void> {
    if (!email || !password) return
    const normalised = normaliseEmail(email)
    if (!normalised)
      throw new Error('keygate: invalid configuration: KEYGATE_ADMIN_EMAIL is not an e-mail address')
    if (!passwordAcceptable(password)) {
      throw new Error(
        'keygate: invalid configuration: KEYGATE_ADMIN_PASSWORD must be 8 to 128 characters long',
      )
    }
    if (await this.#o.store.findUserByEmail(normalised)) return
    try {
      const admin = await this.create(normalised, password, BOOTSTRAP_ADMIN_ROLES)
      log.info({ userId: admin.id }, 'created the admin account from KEYGATE_ADMIN_EMAIL')
    } catch (err) {
      // Another instance created it at the same moment.
      if (!(err instanceof KeygateError && err.code === 'KG_EMAIL_TAKEN')) throw err
    }
  }
}

/** The normalised e-mail when e-mail and password meet the policy; 400 `KG_INVALID_REQUEST` otherwise. */
function acceptedEmail(email: string, password: string): string {
  const normalised = normaliseEmail(email)
  if (!normalised)
    throw new KeygateError('KG_INVALID_REQUEST', { message: 'The e-mail address is not valid' })
  if (!passwordAcceptable(password)) {
    throw new KeygateError('KG_INVALID_REQUEST', { message: 'The password must be 8 to 128 characters long' })
  }
  return normalised
}
