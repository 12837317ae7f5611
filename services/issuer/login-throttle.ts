/**
 * Login throttling per account and per client address. Each attempt reserves a point on both counters
 * before the password is checked, so parallel guesses cannot slip past the limit; a successful login hands
 * the points back (and clears the account's counter). Counters are kept in memory by rate-limiter-flexible,
 * which runs its windows on the wall clock; several issuer instances each keep their own.
 */
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible'
import { KeygateError } from '../../lib/errors.js'

export interface LoginThrottleOptions {
  maxFailuresPerAccount: number
  maxFailuresPerAddress: number
  windowMs: number
}

/** A reserved login attempt: settle it with `succeeded()` or leave it counted as a failure. */
export interface LoginAttempt {
  succeeded(): Promise<void>
}

/** Counts failed logins within a window and refuses further attempts over the limit. */
export class LoginThrottle {
  readonly #accounts: RateLimiterMemory
  readonly #addresses: RateLimiterMemory

  constructor(options: LoginThrottleOptions) {
    const duration = Math.max(1, Math.ceil(options.windowMs / 1000))
    this.#accounts = new RateLimiterMemory({
      keyPrefix: 'login-account',
      points: options.maxFailuresPerAccount,
      duration,
    })
    this.#addresses = new RateLimiterMemory({
      keyPrefix: 'login-address',
      points: options.maxFailuresPerAddress,
      duration,
    })
  }

  /**
   * Reserves an attempt for `account` (a normalised e-mail, whether or not it exists) from `address`.
   * Throws KG_LOGIN_THROTTLED with `Retry-After` when either counter is over its limit.
   */
  async attempt(account: string, address: string): Promise<LoginAttempt> {
    const results = await Promise.allSettled([
      this.#accounts.consume(account),
      this.#addresses.consume(address),
    ])
    const refused = results
      .map((r) => (r.status === 'rejected' ? r.reason : undefined))
      .filter((reason) => reason !== undefined)
    if (refused.length) {
      const waitMs = Math.max(
        ...refused.map((reason) => {
          if (reason instanceof RateLimiterRes) return reason.msBeforeNext
          throw reason
        }),
      )
      throw new KeygateError('KG_LOGIN_THROTTLED', {
        headers: { 'retry-after': String(Math.max(1, Math.ceil(waitMs / 1000))) },
      })
    }
    return {
      succeeded: async () => {
        await Promise.all([this.#accounts.delete(account), this.#addresses.reward(address, 1)])
      },
    }
  }
}
