/**
 * The issuer's maintenance tick: pick up key set changes made by another process (the command line, another
 * instance), rotate keys when due, drop keys whose time is up, and now and then prune the store. Of several
 * instances sharing a database only one runs key maintenance at a time (the store's exclusive task); the
 * others pick its result up on their next tick. Every decision reads the injected clock; the timer only
 * says when to look, so tests call `tick()` after moving a fake clock.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { KeySet } from './keys/key-set.js'
import type { IssuerStore } from './store/types.js'

/**
 * How often the scheduler looks, in milliseconds: key changes made by the command line or another
 * instance are served within this.
 */
export const SCHEDULER_TICK_MS = 1000
/** How often expired sessions, tokens and revocation events are deleted, in milliseconds. */
export const STORE_PRUNE_INTERVAL_MS = 60_000

export interface MaintenanceSchedulerOptions {
  keys: KeySet
  store: IssuerStore
  now: () => number
  log: FastifyBaseLogger
  /** How long revoked sessions stay listed (admin API) before they are deleted, in milliseconds. */
  revokedSessionKeepMs: number
}

/** Runs maintenance on a timer, one tick at a time. */
export class MaintenanceScheduler {
  readonly #o: MaintenanceSchedulerOptions
  #timer: NodeJS.Timeout | undefined
  #running: Promise<void> | undefined
  #lastPruneAt = Number.NEGATIVE_INFINITY

  constructor(options: MaintenanceSchedulerOptions) {
    this.#o = options
  }

  start(): void {
    if (this.#timer) return
    this.#timer = setInterval(() => {
      // A slow tick (key generation) is not stacked on: the next one starts when it is done.
      if (!this.#running) void this.tick()
    }, SCHEDULER_TICK_MS)
    this.#timer.unref()
  }

  /** Runs one tick after any tick in progress, and resolves when it is done. Never rejects. */
  tick(): Promise<void> {
    const previous = this.#running ?? Promise.resolve()
    const run = previous.then(() => this.#runOnce())
    this.#running = run
    void run.finally(() => {
      if (this.#running === run) this.#running = undefined
    })
    return run
  }

  /** Stops the timer and waits for a tick in progress. */
  async stop(): Promise<void> {
    clearInterval(this.#timer)
    this.#timer = undefined
    await this.#running
  }

  async #runOnce(): Promise<void> {
    const { keys, store, log } = this.#o
    try {
      if (await keys.reloadIfChanged()) log.info('key set reloaded after a change made elsewhere')
      const ran = await store.runExclusively('key-maintenance', async () => {
        if (await keys.maintain()) log.info('scheduled key maintenance ran')
      })
      if (!ran) log.debug('key maintenance left to the instance holding the lock')
    } catch (err) {
      log.error({ err }, 'key maintenance failed; retrying on the next tick')
    }
    const now = this.#o.now()
    if (now - this.#lastPruneAt < STORE_PRUNE_INTERVAL_MS) return
    this.#lastPruneAt = now
    try {
      const pruned = await store.prune(now, this.#o.revokedSessionKeepMs)
      if (pruned.sessions || pruned.events) log.debug(pruned, 'pruned expired sessions and revocation events')
    } catch (err) {
      log.error({ err }, 'pruning the store failed; retrying later')
    }
  }
}
