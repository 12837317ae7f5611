/**
 * Registrations per client address (REGISTRATION_RATE_LIMIT): each costs a password hash, so one address
 * may not make the issuer hash for it without bound. A fixed window from the address's first registration;
 * past the limit, 429 `KG_RATE_LIMITED` with `Retry-After` until the window ends. The counter lives in the
 * store beside the login throttle's (shared by instances, kept across restarts).
 */
import { KeygateError } from '../../lib/errors.js'
import { PRUNE_INTERVAL_MS } from './login-throttle.js'
import type { ThrottleCounters } from './store/types.js'

export interface RegistrationThrottleOptions {
  counters: ThrottleCounters
  max: number
  windowMs: number
  /** Milliseconds since the epoch. */
  now: () => number
}

/** Counts registrations per address and refuses those over the limit. */
export class RegistrationThrottle {
  readonly #o: RegistrationThrottleOptions
  #prunedAt = 0

  constructor(options: RegistrationThrottleOptions) {
    this.#o = options
  }

  /** Counts one registration from `address`; throws KG_RATE_LIMITED with `Retry-After` over the limit. */
  async count(address: string): Promise<void> {
    const { counters, max, windowMs } = this.#o
    const key = `register-address:${address}`
    const now = this.#o.now()
    const waitMs = await counters.update([key], now, (current) => {
      const counter = current.get(key)!
      if (counter.count >= max) return { writes: new Map(), result: counter.expiresAt - now }
      const expiresAt = counter.count === 0 ? now + windowMs : counter.expiresAt
      return { writes: new Map([[key, { count: counter.count + 1, blockedUntil: 0, expiresAt }]]), result: 0 }
    })
    if (now - this.#prunedAt >= PRUNE_INTERVAL_MS) {
      this.#prunedAt = now
      await counters.prune(now)
    }
    if (waitMs > 0) {
      throw new KeygateError('KG_RATE_LIMITED', {
        message: 'Too many registrations from this address; try again later',
        headers: { 'retry-after': String(Math.max(1, Math.ceil(waitMs / 1000))) },
      })
    }
  }
}
