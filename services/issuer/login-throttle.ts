/**
 * Login throttling that cannot be turned against the people it protects (OWASP authentication cheat sheet:
 * lockout is a denial-of-service tool). Three counters of failed logins:
 * - per (account, address): past its limit that address waits before trying that account again, with
 *   exponential back-off (LOGIN_BACKOFF, doubling per further failure, at most LOGIN_THROTTLE_WINDOW);
 * - per address, whatever the accounts (spraying): past its limit the address waits the same way;
 * - per account, from any address: past its limit each attempt is only slowed down (from
 *   FIRST_SLOWDOWN_MS, doubling, at most LOGIN_SLOWDOWN_MAX) — never refused, so the owner logging in
 *   from an address with no recent failures always gets in with the right password.
 * Each attempt counts as a failure before the password is checked (parallel guesses see each other); a
 * success hands the address its point back and clears the account's and the pair's counters. Counters
 * live in the store (store/throttle-counters.ts: shared by every instance on the database, kept across
 * restarts) or, with REDIS_URL, in Redis (redis-throttle-counters.ts: shared by every instance on it), and
 * are forgotten a window after their last failure.
 */
import { KeygateError } from '../../lib/errors.js'
import type { ThrottleCounter, ThrottleCounters } from './store/types.js'

/** The throttle's limits (the issuer's LOGIN_* settings, in milliseconds). */
export interface LoginThrottleSettings {
  maxFailuresPerAccountAndAddress: number
  maxFailuresPerAddress: number
  maxFailuresPerAccount: number
  /** The first wait once a refusing limit is reached; doubles with each further failure. */
  backoffMs: number
  /** How long a counter remembers after its last failure; also the longest wait. */
  windowMs: number
  /** The longest slow-down of an attempt on an account over its limit (0: none). */
  slowdownMaxMs: number
}

export interface LoginThrottleOptions extends LoginThrottleSettings {
  counters: ThrottleCounters
  /** Milliseconds since the epoch. */
  now: () => number
  /** Waits `ms` milliseconds (the slow-down); tests pass their own. */
  sleep?: (ms: number) => Promise<void>
}

/** The slow-down of the first attempt past an account's limit, in milliseconds (250 ms). */
export const FIRST_SLOWDOWN_MS = 250
/** How often a throttle deletes expired counters, at most, in milliseconds (1 min). */
export const PRUNE_INTERVAL_MS = 60_000

/** A reserved login attempt: settle it with `succeeded()` or leave it counted as a failure. */
export interface LoginAttempt {
  succeeded(): Promise<void>
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** The waits double; past 2^20 times the first they have long hit any cap. */
const doubled = (firstMs: number, times: number) => firstMs * 2 ** Math.min(Math.max(times, 0), 20)

/** Counts failed logins and refuses, or slows down, further attempts. */
export class LoginThrottle {
  readonly #o: LoginThrottleOptions
  readonly #sleep: (ms: number) => Promise<void>
  #prunedAt = 0

  constructor(options: LoginThrottleOptions) {
    this.#o = options
    this.#sleep = options.sleep ?? sleep
  }

  /**
   * Reserves an attempt for `account` (a normalised e-mail, whether or not it exists) from `address`,
   * after the account's slow-down if it is over its limit. Throws KG_LOGIN_THROTTLED with `Retry-After`
   * while this address waits, for this account or for all.
   */
  async attempt(account: string, address: string): Promise<LoginAttempt> {
    const o = this.#o
    const keys = counterKeys(account, address)
    const now = o.now()
    const outcome = await o.counters.update(Object.values(keys), now, (current) => {
      const pair = current.get(keys.pair)!
      const byAddress = current.get(keys.address)!
      const byAccount = current.get(keys.account)!
      const blockedUntil = Math.max(pair.blockedUntil, byAddress.blockedUntil)
      if (blockedUntil > now) return { writes: new Map(), result: { waitMs: blockedUntil - now, delayMs: 0 } }
      const over = byAccount.count - o.maxFailuresPerAccount
      const delayMs = over < 0 ? 0 : Math.min(o.slowdownMaxMs, doubled(FIRST_SLOWDOWN_MS, over))
      const writes = new Map<string, ThrottleCounter>([
        [keys.pair, this.#failure(pair, o.maxFailuresPerAccountAndAddress, now)],
        [keys.address, this.#failure(byAddress, o.maxFailuresPerAddress, now)],
        [keys.account, { count: byAccount.count + 1, blockedUntil: 0, expiresAt: now + o.windowMs }],
      ])
      return { writes, result: { waitMs: 0, delayMs } }
    })
    await this.#pruneNow(now)
    if (outcome.waitMs > 0) {
      throw new KeygateError('KG_LOGIN_THROTTLED', {
        headers: { 'retry-after': String(Math.max(1, Math.ceil(outcome.waitMs / 1000))) },
      })
    }
    if (outcome.delayMs > 0) await this.#sleep(outcome.delayMs)
    return { succeeded: () => this.#succeeded(keys) }
  }

  /** One more failure on a counter; at its limit and past it, a back-off that doubles each time. */
  #failure(counter: ThrottleCounter, max: number, now: number): ThrottleCounter {
    const count = counter.count + 1
    const blockedUntil =
      count < max ? 0 : now + Math.min(this.#o.windowMs, doubled(this.#o.backoffMs, count - max))
    return { count, blockedUntil, expiresAt: now + this.#o.windowMs }
  }

  async #succeeded(keys: CounterKeys): Promise<void> {
    const max = this.#o.maxFailuresPerAddress
    await this.#o.counters.update(Object.values(keys), this.#o.now(), (current) => {
      const byAddress = current.get(keys.address)!
      const count = Math.max(0, byAddress.count - 1)
      const address =
        count === 0 ? null : { ...byAddress, count, blockedUntil: count < max ? 0 : byAddress.blockedUntil }
      const writes = new Map([
        [keys.pair, null],
        [keys.account, null],
        [keys.address, address],
      ])
      return { writes, result: undefined }
    })
  }

  async #pruneNow(now: number): Promise<void> {
    if (now - this.#prunedAt < PRUNE_INTERVAL_MS) return
    this.#prunedAt = now
    await this.#o.counters.prune(now)
  }
}

interface CounterKeys {
  pair: string
  address: string
  account: string
}

/** Counter keys; an address never contains a space, so the pair's key cannot be forged by an e-mail. */
function counterKeys(account: string, address: string): CounterKeys {
  return {
    pair: `login-pair:${address} ${account}`,
    address: `login-address:${address}`,
    account: `login-account:${account}`,
  }
}
