/**
 * E-mail one-time login codes. `request` answers the same whether or not the address has an account (the
 * caller learns nothing): it always stores a code hash for the address, replacing any earlier code, and
 * mails a code only when it could log someone in (an account exists, or registration is open). A code is
 * six digits, valid EMAIL_CODE_TTL, stored only as a SHA-256 hash bound to its address, spent by its first
 * correct use, and dead after EMAIL_CODE_MAX_ATTEMPTS wrong ones. Requests are limited per client address
 * and per e-mail (no spamming an inbox, no fresh codes to guess at will); verification goes through the
 * login throttle like a password, per account and address.
 */
import { createHash, randomBytes, randomInt } from 'node:crypto'
import { KeygateError } from '../../lib/errors.js'
import { sameSecret } from '../../lib/secrets.js'
import type { Accounts } from './accounts.js'
import { EMAIL_CODE_DIGITS, type EmailCodeSettings } from './email-code-settings.js'
import { normaliseEmail } from './credentials.js'
import type { LoginThrottle } from './login-throttle.js'
import type { MailDelivery } from './mail/mail-delivery.js'
import type { IssuerMetrics } from './metrics.js'
import { PRUNE_INTERVAL_MS } from './login-throttle.js'
import { FixedWindowThrottle } from './registration-throttle.js'
import type { IssuerStore, ThrottleCounters, UserRecord } from './store/types.js'

export interface EmailCodesOptions {
  settings: EmailCodeSettings
  /** Whether a code may log in an address that has no account yet (REGISTRATION=open). */
  registrationOpen: boolean
  store: IssuerStore
  accounts: Accounts
  throttle: LoginThrottle
  /** Where the code request limits count (the login throttle's counters). */
  counters: ThrottleCounters
  mail: MailDelivery
  metrics: IssuerMetrics
  now: () => number
}

/** The hash a code is stored as: bound to its address, so a code for one address is nothing for another. */
export function emailCodeHash(email: string, code: string): string {
  return createHash('sha256').update(`${email}\n${code}`).digest('base64url')
}

/** E-mail code requests and logins. */
export class EmailCodes {
  readonly #o: EmailCodesOptions
  readonly #perAddress: FixedWindowThrottle
  readonly #perEmail: FixedWindowThrottle
  #prunedAt = 0

  constructor(options: EmailCodesOptions) {
    this.#o = options
    const { settings, counters, now } = options
    this.#perAddress = new FixedWindowThrottle({
      ...settings.emailCodeLimitPerAddress,
      counters,
      now,
      prefix: 'email-code-address',
      message: 'Too many code requests from this address; try again later',
    })
    this.#perEmail = new FixedWindowThrottle({
      ...settings.emailCodeLimitPerEmail,
      counters,
      now,
      prefix: 'email-code-email',
      message: 'Too many codes were requested for this e-mail; use the last one or try again later',
    })
  }

  /**
   * Issues a code for `email`, requested from `address`; returns the normalised e-mail. 400 for an e-mail
   * that cannot be one, 429 `KG_RATE_LIMITED` over a limit. Mail goes out in the background.
   */
  async request(email: string, address: string): Promise<string> {
    const { store, settings, metrics, now } = this.#o
    const normalised = acceptedEmail(email)
    try {
      await this.#perAddress.count(address)
      await this.#perEmail.count(normalised)
    } catch (err) {
      metrics.emailCodes.inc({ outcome: 'throttled' })
      throw err
    }
    const user = await store.findUserByEmail(normalised)
    const deliver = user !== undefined || this.#o.registrationOpen
    const code = String(randomInt(0, 10 ** EMAIL_CODE_DIGITS)).padStart(EMAIL_CODE_DIGITS, '0')
    // Without an account to log in to, an unguessable hash takes the code's place: the same write, and any
    // earlier code is invalidated all the same.
    const stored = deliver ? code : randomBytes(32).toString('base64url')
    const createdAt = now()
    await store.emailCodes.put({
      email: normalised,
      codeHash: emailCodeHash(normalised, stored),
      createdAt,
      expiresAt: createdAt + settings.emailCodeTtlMs,
    })
    if (deliver) this.#o.mail.send(codeMessage(normalised, code, settings.emailCodeTtlMs))
    metrics.emailCodes.inc({ outcome: 'requested' })
    await this.#pruneNow(createdAt)
    return normalised
  }

  /**
   * Logs in with a code: the account, created first when there is none and registration is open. 401
   * `KG_EMAIL_CODE_INVALID` for a wrong, expired, spent or superseded code; 429 from the login throttle.
   */
  async verify(email: string, code: string, address: string): Promise<UserRecord> {
    const { store, settings, metrics, now } = this.#o
    const normalised = acceptedEmail(email)
    const attempt = await this.#o.throttle.attempt(normalised, address)
    const presented = emailCodeHash(normalised, code)
    const check = await store.emailCodes.consume(
      normalised,
      (stored) => sameSecret(stored, presented),
      now(),
      settings.emailCodeMaxAttempts,
    )
    const user =
      check === 'matched'
        ? await this.#o.accounts.forVerifiedEmail(normalised, this.#o.registrationOpen)
        : undefined
    if (!user) {
      metrics.emailCodes.inc({ outcome: 'invalid' })
      throw new KeygateError('KG_EMAIL_CODE_INVALID')
    }
    await attempt.succeeded()
    metrics.emailCodes.inc({ outcome: 'verified' })
    return user
  }

  async #pruneNow(now: number): Promise<void> {
    if (now - this.#prunedAt < PRUNE_INTERVAL_MS) return
    this.#prunedAt = now
    await this.#o.store.emailCodes.prune(now)
  }
}

function acceptedEmail(email: string): string {
  const normalised = normaliseEmail(email)
  if (!normalised)
    throw new KeygateError('KG_INVALID_REQUEST', { message: 'The e-mail address is not valid' })
  return normalised
}

function codeMessage(to: string, code: string, ttlMs: number) {
  const minutes = Math.max(1, Math.round(ttlMs / 60_000))
  return {
    to,
    purpose: 'email-code',
    // The code stays out of the subject: subjects show up in notifications and mail server logs.
    subject: 'Your keygate login code',
    text:
      `Your login code is ${code}\n\n` +
      `It is valid for ${minutes} minute${minutes === 1 ? '' : 's'} and can be used once. ` +
      'If you did not ask for it, ignore this message: nobody can log in without the code.\n',
  }
}
