/**
 * Fixed-window limits per key, counted in the store beside the login throttle's counters (shared by
 * instances, kept across restarts). A window starts with a key's first count; past `max`, 429
 * `KG_RATE_LIMITED` with `Retry-After` until the window ends, and a refused attempt does not extend it.
 * Registrations per address (REGISTRATION_RATE_LIMIT: each costs a password hash) and e-mail code
 * requests per address and per e-mail (EMAIL_CODE_RATE_LIMIT_*) are such limits.
 */
import { KeygateError } from '../../lib/errors.js'
import { PRUNE_INTERVAL_MS } from './login-throttle.js'
import type { ThrottleCounters } from './store/types.js'

export interface FixedWindowThrottleOptions {
  counters: ThrottleCounters
  max: number
  windowMs: number
  /** Milliseconds since the epoch. */
  now: () => number
  /** Names the counters (`<prefix>:<key>`); different limits never share a counter. */
  prefix: string
  /** The 429's message. */
  message: string
}

/** Counts events per key and refuses those over the limit. */
export class FixedWindowThrottle {
  readonly #o: FixedWindowThrottleOptions
  #prunedAt = 0

  constructor(options: FixedWindowThrottleOptions) {
    this.#o = options
  }

  /** Counts one event for `key`; throws KG_RATE_LIMITED with `Retry-After` over the limit. */
  async count(key: string): Promise<void> {
    const waitMs = await this.#take([key])
    if (waitMs > 0) this.#refuse(waitMs)
  }

  /**
   * Counts one event for each key, all or none: when any key is over its limit nothing is counted.
   * Throws KG_RATE_LIMITED with the longest wait.
   */
  async countAll(keys: readonly string[]): Promise<void> {
    const waitMs = await this.#take(keys)
    if (waitMs > 0) this.#refuse(waitMs)
  }

  async #take(keys: readonly string[]): Promise<number> {
    const { counters, max, windowMs, prefix } = this.#o
    const names = [...new Set(keys.map((key) => `${prefix}:${key}`))]
    const now = this.#o.now()
    const waitMs = await counters.update(names, now, (current) => {
      const over = names.map((name) => current.get(name)!).filter((counter) => counter.count >= max)
      if (over.length > 0) {
        return { writes: new Map(), result: Math.max(...over.map((counter) => counter.expiresAt - now)) }
      }
      const writes = new Map(
        names.map((name) => {
          const counter = current.get(name)!
          const expiresAt = counter.count === 0 ? now + windowMs : counter.expiresAt
          return [name, { count: counter.count + 1, blockedUntil: 0, expiresAt }] as const
        }),
      )
      return { writes, result: 0 }
    })
    if (now - this.#prunedAt >= PRUNE_INTERVAL_MS) {
      this.#prunedAt = now
      await counters.prune(now)
    }
    return waitMs
  }

  #refuse(waitMs: number): never {
    throw new KeygateError('KG_RATE_LIMITED', {
      message: this.#o.message,
      headers: { 'retry-after': String(Math.max(1, Math.ceil(waitMs / 1000))) },
    })
  }
}

export interface RegistrationThrottleOptions {
  counters: ThrottleCounters
  max: number
  windowMs: number
  now: () => number
}

/** Registrations per client address (REGISTRATION_RATE_LIMIT). */
export class RegistrationThrottle {
  readonly #limit: FixedWindowThrottle

  constructor(options: RegistrationThrottleOptions) {
    this.#limit = new FixedWindowThrottle({
      ...options,
      prefix: 'register-address',
      message: 'Too many registrations from this address; try again later',
    })
  }

  /** Counts one registration from `address`; throws KG_RATE_LIMITED with `Retry-After` over the limit. */
  count(address: string): Promise<void> {
    return this.#limit.count(address)
  }
}
