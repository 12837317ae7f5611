/**
 * The throttles' counters in Redis (REDIS_URL), for issuers that share Redis rather than, or besides, a
 * database: every login, registration, e-mail code and client authentication throttle then counts once
 * across all of them. Only where counters live changes: the policies stay in the throttles
 * (login-throttle.ts, registration-throttle.ts), which read and write through the same `update` as on the
 * store (store/throttle-counters.ts).
 *
 * The gateway's Redis rate limits (@fastify/rate-limit's store) count fixed windows with INCR; the login
 * throttle needs several counters read and written together (back-off, the account's slow-down, a success
 * giving the address its point back), so this is a compare-and-set over the keys of one update instead:
 * the counters are read, the throttle decides, and one Lua script writes only if no counter changed
 * meanwhile (else the update runs again on what another instance wrote). Within one process updates on the
 * same keys take turns, so retries are for other instances only. Redis expires each counter a window after
 * its last failure, so nothing needs pruning. While Redis is unreachable the throttles count in the store
 * (`fallback`) rather than stop counting, and the connection's warning says so.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { Redis } from 'ioredis'
import type { ThrottleCounter, ThrottleCounters, ThrottleCounterWrites } from './store/types.js'

/** Rounds of compare-and-set before an update gives up on Redis for the store (others kept winning). */
export const MAX_CAS_ROUNDS = 32
/**
 * After a command failed (Redis connected but not answering in time), how long updates go straight to the
 * store before Redis is tried again, in milliseconds (5 s): a stalled Redis costs one command timeout, not
 * one per login.
 */
export const REDIS_RETRY_AFTER_FAILURE_MS = 5000

const ZERO: ThrottleCounter = { count: 0, blockedUntil: 0, expiresAt: 0 }

/**
 * KEYS: the counters. ARGV, four per key: the value read ('' for none), then `keep`, `del` or `set` with the
 * new value and its time to live in ms. Writes nothing and answers 0 when any value changed since it was read.
 */
const COMPARE_AND_SET = `
for i = 1, #KEYS do
  if (redis.call('GET', KEYS[i]) or '') ~= ARGV[i * 4 - 3] then return 0 end
end
for i = 1, #KEYS do
  local op = ARGV[i * 4 - 2]
  if op == 'set' then
    redis.call('SET', KEYS[i], ARGV[i * 4 - 1], 'PX', ARGV[i * 4])
  elseif op == 'del' then
    redis.call('DEL', KEYS[i])
  end
end
return 1
`

export interface RedisThrottleCountersOptions {
  redis: Redis
  /** REDIS_KEY_PREFIX; counters are `<prefix>throttle:<key>`. */
  keyPrefix: string
  /** Where counters go while Redis is unreachable (the store's). */
  fallback: ThrottleCounters
  log: FastifyBaseLogger
}

/** ThrottleCounters over Redis, with the store's while Redis is unreachable. */
export class RedisThrottleCounters implements ThrottleCounters {
  readonly #o: RedisThrottleCountersOptions
  /** Per key, the last update queued on it in this process. */
  readonly #turns = new Map<string, Promise<unknown>>()
  /** Whether the last command failed (a failure after a success is logged; the connection logs its loss). */
  #failing = false
  /** Until when (the throttles' clock) updates skip Redis after a failed command. */
  #skipUntil = 0

  constructor(options: RedisThrottleCountersOptions) {
    this.#o = options
  }

  async update<R>(
    keys: readonly string[],
    now: number,
    change: (current: ReadonlyMap<string, ThrottleCounter>) => { writes: ThrottleCounterWrites; result: R },
  ): Promise<R> {
    const unique = [...new Set(keys)]
    const outcome = await this.#inTurn(unique, () => this.#compareAndSet(unique, now, change))
    return outcome === undefined ? this.#o.fallback.update(keys, now, change) : outcome.result
  }

  /** Redis forgets expired counters itself; the store's, used while Redis was away, are pruned. */
  prune(now: number): Promise<number> {
    return this.#o.fallback.prune(now)
  }

  /** The update's result, or undefined when Redis could not take it (unreachable, or lost every round). */
  async #compareAndSet<R>(
    keys: string[],
    now: number,
    change: (current: ReadonlyMap<string, ThrottleCounter>) => { writes: ThrottleCounterWrites; result: R },
  ): Promise<{ result: R } | undefined> {
    const { redis, keyPrefix } = this.#o
    if (redis.status !== 'ready' || keys.length === 0 || now < this.#skipUntil) return undefined
    const names = keys.map((key) => `${keyPrefix}throttle:${key}`)
    try {
      for (let round = 0; round < MAX_CAS_ROUNDS; round++) {
        const raw = await redis.mget(...names)
        const current = new Map(keys.map((key, i) => [key, counterOf(raw[i] ?? null, now)]))
        const { writes, result } = change(current)
        if (writes.size === 0) return { result }
        const args = keys.flatMap((key, i) => {
          const read = raw[i] ?? ''
          if (!writes.has(key)) return [read, 'keep', '', '0']
          const counter = writes.get(key)
          if (counter === null || counter === undefined) return [read, 'del', '', '0']
          return [read, 'set', JSON.stringify(counter), String(Math.max(1, counter.expiresAt - now))]
        })
        if ((await redis.eval(COMPARE_AND_SET, names.length, ...names, ...args)) === 1) {
          this.#failing = false
          return { result }
        }
      }
    } catch (err) {
      // Lost mid-update, or connected but not answering in time: the store counts meanwhile.
      if (!this.#failing) {
        this.#o.log.warn(
          { reason: (err as Error).message },
          'Redis command failed: throttles count in the store',
        )
      }
      this.#failing = true
      this.#skipUntil = now + REDIS_RETRY_AFTER_FAILURE_MS
    }
    return undefined
  }

  /** Runs `fn` once every earlier update in this process on any of `keys` is done. */
  async #inTurn<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T> {
    const earlier = keys.map((key) => this.#turns.get(key))
    const turn = Promise.allSettled(earlier).then(fn)
    for (const key of keys) this.#turns.set(key, turn)
    try {
      return await turn
    } finally {
      for (const key of keys) if (this.#turns.get(key) === turn) this.#turns.delete(key)
    }
  }
}

/** A stored counter, or zero when there is none, it has expired, or it is not one of ours. */
function counterOf(raw: string | null, now: number): ThrottleCounter {
  if (raw === null) return ZERO
  try {
    const c = JSON.parse(raw) as ThrottleCounter
    const valid = [c.count, c.blockedUntil, c.expiresAt].every(
      (n) => typeof n === 'number' && Number.isFinite(n),
    )
    return valid && c.expiresAt > now ? c : ZERO
  } catch {
    return ZERO
  }
}
