/**
 * Fan-out of recorded revocations to everything in this process that follows them (the open feed streams,
 * the issuer's own verifier). The event table is the truth; a wake-up only says "look now": after a local
 * write commits, on a PostgreSQL notification from another instance, and on a poll timer as the safety
 * net. Each look reads the events after the last cursor delivered, so nothing is delivered twice or out of
 * order, and a missed wake-up costs at most one poll interval.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { RecordedRevocationEvent } from '@keygate/fastify-auth'
import type { IssuerStore } from '../store/types.js'

/** Events read from the table per query. */
export const FANOUT_PAGE_SIZE = 500

export type RevocationListener = (events: RecordedRevocationEvent[]) => void

export interface RevocationFanoutOptions {
  store: IssuerStore
  log: FastifyBaseLogger
  /** How often the table is read without a wake-up, in milliseconds. */
  pollIntervalMs: number
}

/** Reads new events from the store and hands them, in cursor order, to every listener. */
export class RevocationFanout {
  readonly #o: RevocationFanoutOptions
  readonly #listeners = new Set<RevocationListener>()
  #cursor = 0
  #started = false
  #timer: NodeJS.Timeout | undefined
  /** The read in progress, and the one queued behind it (which any further wake-up joins). */
  #running: Promise<void> | undefined
  #queued: Promise<void> | undefined
  #failing = false

  constructor(options: RevocationFanoutOptions) {
    this.#o = options
  }

  /** The last cursor delivered: the latest event this instance knows to be recorded. */
  get cursor(): number {
    return this.#cursor
  }

  /** Starts from the latest stored event (what came before is served from the table) and starts polling. */
  async start(): Promise<void> {
    if (this.#started) return
    this.#cursor = await this.#o.store.latestRevocationCursor()
    this.#started = true
    this.#timer = setInterval(() => void this.wake(), this.#o.pollIntervalMs)
    this.#timer.unref()
  }

  /** Stops polling and waits for a read in progress; later wake-ups do nothing. */
  async stop(): Promise<void> {
    this.#started = false
    clearInterval(this.#timer)
    this.#timer = undefined
    await this.#queued
    await this.#running
  }

  /** Calls `listener` with every batch of new events; returns the unsubscribe function. */
  subscribe(listener: RevocationListener): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /**
   * Reads and delivers what was recorded since the last read. Resolves once a read that started after
   * this call has finished (so an event committed before the call has been delivered). Never rejects.
   */
  wake(): Promise<void> {
    if (this.#queued) return this.#queued
    const previous = this.#running ?? Promise.resolve()
    const run: Promise<void> = previous.then(async () => {
      // From here a wake-up must queue another read: this one may already have missed its event.
      this.#queued = undefined
      this.#running = run
      try {
        await this.#deliverNew()
      } finally {
        if (this.#running === run) this.#running = undefined
      }
    })
    this.#queued = run
    return run
  }

  async #deliverNew(): Promise<void> {
    if (!this.#started) return
    try {
      for (;;) {
        const events = await this.#o.store.listRevocations(this.#cursor, FANOUT_PAGE_SIZE)
        if (events.length === 0) break
        this.#cursor = events[events.length - 1]!.cursor
        for (const listener of this.#listeners) {
          try {
            listener(events)
          } catch (err) {
            this.#o.log.error({ err }, 'a revocation listener failed')
          }
        }
        if (events.length < FANOUT_PAGE_SIZE) break
      }
      if (this.#failing) this.#o.log.info('reading revocation events works again')
      this.#failing = false
    } catch (err) {
      // Logged once per outage, not once per poll; the next wake-up or poll retries from the same cursor.
      if (!this.#failing) this.#o.log.error({ err }, 'reading revocation events failed; retrying')
      this.#failing = true
    }
  }
}
