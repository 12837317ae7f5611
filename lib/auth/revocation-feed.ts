/**
 * A verifier's subscription to one issuer's revocation feed: a server-sent-event stream read from the last
 * applied cursor, applied to the issuer's RevocationSet the moment it arrives (the set tells the verifiers'
 * caches what to drop), reconnected with backoff when it drops (timings: feed-protocol.ts). Verification never waits on it; it only tells sensitive routes
 * when it has been out of contact too long to trust.
 */
import { createParser } from 'eventsource-parser'
import { type Dispatcher, request } from 'undici'
import {
  DEFAULT_FEED_SILENCE_MS,
  FEED_FIRST_BACKOFF_MS,
  FEED_MAX_BACKOFF_MS,
  FEED_SECRET_HEADER,
  type FeedHeartbeat,
  parseWireEvent,
  type RecordedRevocationEvent,
} from './feed-protocol.js'
import type { RevocationSet } from './revocation-set.js'

/** How long the feed may be out of contact before sensitive routes refuse requests, in milliseconds. */
export const DEFAULT_FEED_MAX_STALE_MS = 30_000

export type FeedState = 'connecting' | 'live' | 'down'

export interface RevocationFeedOptions {
  issuer: string
  /** Base URL of the feed (the issuer's `/revocations`). */
  url: string
  secret: string
  /** The issuer's revocation set, which the feed fills (and which tells its verifiers what to drop). */
  set: RevocationSet
  /** Called after a batch of events was applied (metrics). */
  onApplied?: (events: RecordedRevocationEvent[]) => void
  maxStaleMs?: number
  /** Default DEFAULT_FEED_SILENCE_MS (feed-protocol.ts). */
  silenceMs?: number
  now?: () => number
  dispatcher?: Dispatcher
  onStateChange?: (state: FeedState, reason?: string) => void
}

export class RevocationFeed {
  readonly issuer: string
  #state: FeedState = 'connecting'
  #cursor = 0
  #lastContact: number
  /** `createdAt` of the newest applied event, to report propagation lag. */
  #lastEventAt: number | undefined
  #latestKnownCursor = 0
  #synced = false
  #syncedResolve!: () => void
  readonly #syncedPromise = new Promise<void>((r) => (this.#syncedResolve = r))
  #abort: AbortController | undefined
  #closed = false
  #backoff = FEED_FIRST_BACKOFF_MS
  readonly #options: RevocationFeedOptions &
    Required<Pick<RevocationFeedOptions, 'maxStaleMs' | 'silenceMs' | 'now'>>

  constructor(options: RevocationFeedOptions) {
    this.issuer = options.issuer
    this.#options = {
      maxStaleMs: DEFAULT_FEED_MAX_STALE_MS,
      silenceMs: DEFAULT_FEED_SILENCE_MS,
      now: Date.now,
      ...options,
    }
    this.#lastContact = this.#options.now()
  }

  get state(): FeedState {
    return this.#state
  }

  /** The last cursor applied. */
  get cursor(): number {
    return this.#cursor
  }

  /** Resolves once the backlog has been read and the stream is live. */
  synced(): Promise<void> {
    return this.#syncedPromise
  }

  isSynced(): boolean {
    return this.#synced
  }

  /** True when the feed has been out of contact longer than the bound (sensitive routes then refuse). */
  isStale(): boolean {
    return this.#options.now() - this.#lastContact > this.#options.maxStaleMs
  }

  /** Seconds since the feed last heard from the issuer. */
  silenceSeconds(): number {
    return (this.#options.now() - this.#lastContact) / 1000
  }

  /** Events the issuer has recorded that this verifier has not applied yet. */
  cursorLag(): number {
    return Math.max(0, this.#latestKnownCursor - this.#cursor)
  }

  /** Milliseconds between the newest applied revocation being recorded and being applied here. */
  lastEventAt(): number | undefined {
    return this.#lastEventAt
  }

  start(): void {
    void this.#run()
  }

  async close(): Promise<void> {
    this.#closed = true
    this.#abort?.abort()
  }

  #setState(state: FeedState, reason?: string): void {
    if (state === this.#state) return
    this.#state = state
    this.#options.onStateChange?.(state, reason)
  }

  async #run(): Promise<void> {
    while (!this.#closed) {
      try {
        await this.#stream()
        // A stream that ends cleanly (issuer restarting) is reopened at once.
        this.#backoff = FEED_FIRST_BACKOFF_MS
      } catch (err) {
        if (this.#closed) return
        this.#setState('down', (err as Error).message)
        await new Promise((r) => setTimeout(r, this.#backoff).unref())
        this.#backoff = Math.min(this.#backoff * 2, FEED_MAX_BACKOFF_MS)
      }
    }
  }

  async #stream(): Promise<void> {
    const abort = new AbortController()
    this.#abort = abort
    let silence: NodeJS.Timeout | undefined
    const heard = () => {
      this.#lastContact = this.#options.now()
      clearTimeout(silence)
      silence = setTimeout(() => abort.abort(new Error('feed went silent')), this.#options.silenceMs)
      silence.unref()
    }
    try {
      const res = await request(`${this.#options.url}/stream?after=${this.#cursor}`, {
        method: 'GET',
        headers: { accept: 'text/event-stream', [FEED_SECRET_HEADER]: this.#options.secret },
        signal: abort.signal,
        headersTimeout: this.#options.silenceMs,
        bodyTimeout: 0,
        ...(this.#options.dispatcher ? { dispatcher: this.#options.dispatcher } : {}),
      })
      res.body.on('error', () => {})
      if (res.statusCode !== 200) {
        res.body.destroy()
        throw new Error(`feed answered HTTP ${res.statusCode}`)
      }
      heard()
      this.#backoff = FEED_FIRST_BACKOFF_MS
      const pending: RecordedRevocationEvent[] = []
      const parser = createParser({
        onEvent: (message) => {
          if (message.event === 'revocation') {
            const event = parseWireEvent(JSON.parse(message.data))
            if (event && event.cursor > this.#cursor) pending.push(event)
          } else if (message.event === 'heartbeat') {
            const beat = JSON.parse(message.data) as FeedHeartbeat
            const issuerCursor = Number(beat.cursor) || 0
            if (issuerCursor < this.#cursor) {
              // The issuer's history restarted (a new database): read it again from the start.
              this.#cursor = 0
              this.#latestKnownCursor = 0
              abort.abort(new Error('the issuer’s cursor went backwards'))
              return
            }
            this.#latestKnownCursor = Math.max(this.#latestKnownCursor, issuerCursor)
            // The first heartbeat follows the backlog: from here on the set is complete.
            if (!this.#synced) {
              this.#synced = true
              this.#syncedResolve()
            }
            this.#setState('live')
          }
        },
      })
      for await (const chunk of res.body) {
        heard()
        parser.feed((chunk as Buffer).toString('utf8'))
        if (pending.length > 0) this.#apply(pending.splice(0))
      }
    } finally {
      clearTimeout(silence)
    }
  }

  #apply(events: RecordedRevocationEvent[]): void {
    this.#options.set.apply(events)
    for (const event of events) {
      this.#cursor = Math.max(this.#cursor, event.cursor)
      this.#latestKnownCursor = Math.max(this.#latestKnownCursor, event.cursor)
      this.#lastEventAt = event.createdAt
    }
    this.#options.onApplied?.(events)
  }
}
