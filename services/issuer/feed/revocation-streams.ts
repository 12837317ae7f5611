/**
 * The open revocation streams of one issuer instance (server-sent events, lib/auth/feed-protocol.ts). A
 * stream first sends every stored event after the subscriber's cursor, then a heartbeat — which tells the
 * subscriber its set is complete — then live events as the fan-out delivers them, and a heartbeat every
 * interval. Live events that arrive while the backlog is still being read wait in the stream's queue, and
 * a cursor per stream drops what the backlog already sent, so the subscriber sees each event once, in order.
 */
import type { ServerResponse } from 'node:http'
import type { FastifyBaseLogger } from 'fastify'
import type { FeedHeartbeat, RecordedRevocationEvent } from '@keygate/fastify-auth'
import type { IssuerStore } from '../store/types.js'
import type { RevocationFanout } from './revocation-fanout.js'

/** Events read from the table per backlog query. */
export const BACKLOG_PAGE_SIZE = 500
/**
 * Bytes a stream may have waiting in its socket before the subscriber counts as stuck and is cut off; it
 * reconnects and resumes from its cursor, so this costs it nothing but the reconnection.
 */
export const MAX_UNSENT_BYTES = 1024 * 1024
/** How long a stream ended at shutdown may take to flush before its socket is destroyed, in milliseconds. */
export const SHUTDOWN_FLUSH_MS = 1000

export interface RevocationStreamsOptions {
  store: IssuerStore
  fanout: RevocationFanout
  log: FastifyBaseLogger
  now: () => number
  heartbeatMs: number
  maxStreams: number
}

interface Stream {
  res: ServerResponse
  /** The last cursor written to this stream. */
  sent: number
  /** Live events delivered while the backlog was being read; null once the stream is live. */
  pending: RecordedRevocationEvent[] | null
}

/** Every open stream of this instance, their heartbeat and their shutdown. */
export class RevocationStreams {
  readonly #o: RevocationStreamsOptions
  readonly #streams = new Set<Stream>()
  readonly #unsubscribe: () => void
  #heartbeat: NodeJS.Timeout | undefined
  #closing = false

  constructor(options: RevocationStreamsOptions) {
    this.#o = options
    this.#unsubscribe = options.fanout.subscribe((events) => {
      for (const stream of this.#streams) this.#deliver(stream, events)
    })
  }

  /** Streams open now (backlog or live). */
  get open(): number {
    return this.#streams.size
  }

  /** True when another stream would exceed the limit (or the instance is shutting down). */
  get full(): boolean {
    return this.#closing || this.#streams.size >= this.#o.maxStreams
  }

  /**
   * Serves one stream on a response the route has taken over from Fastify, from the events after `after`
   * (`log`: the request's logger). Resolves once the stream is live (or gone); the stream itself lasts until
   * the subscriber leaves or the instance shuts down.
   */
  async serve(res: ServerResponse, after: number, log: FastifyBaseLogger = this.#o.log): Promise<void> {
    const stream: Stream = { res, sent: after, pending: [] }
    this.#streams.add(stream)
    log.debug({ after, open: this.#streams.size }, 'revocation stream opened')
    res.on('close', () => {
      this.#streams.delete(stream)
      log.debug({ cursor: stream.sent, open: this.#streams.size }, 'revocation stream closed')
    })
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      // Reverse proxies (nginx) must pass events through as they come, not buffer them.
      'x-accel-buffering': 'no',
    })
    // Headers now: the subscriber's header timeout must not wait on a long backlog.
    res.flushHeaders()
    this.#startHeartbeat()
    try {
      for (;;) {
        const events = await this.#o.store.listRevocations(stream.sent, BACKLOG_PAGE_SIZE)
        if (!this.#streams.has(stream)) return
        if (events.length > 0) {
          stream.sent = events[events.length - 1]!.cursor
          if (!res.write(events.map(revocationMessage).join(''))) await drained(res)
        }
        if (events.length < BACKLOG_PAGE_SIZE) break
      }
    } catch (err) {
      log.warn({ err }, 'reading the revocation backlog failed; the subscriber will reconnect')
      res.destroy()
      return
    }
    if (!this.#streams.has(stream)) return
    const pending = stream.pending!
    stream.pending = null
    this.#deliver(stream, pending)
    // The first heartbeat follows the backlog: the subscriber now holds every event up to its cursor.
    this.#write(stream, this.#heartbeatMessage(stream))
  }

  /** Ends every stream (shutdown): subscribers reconnect, to another instance or to this one restarted. */
  closeAll(): void {
    this.#closing = true
    for (const stream of this.#streams) {
      const { res } = stream
      res.end()
      // A subscriber that stopped reading would keep the server from closing: give it a moment, then cut.
      const cut = setTimeout(() => res.destroy(), SHUTDOWN_FLUSH_MS)
      cut.unref()
      res.once('close', () => clearTimeout(cut))
    }
    this.#streams.clear()
  }

  /** Stops the heartbeat and the subscription (after `closeAll`). */
  stop(): void {
    clearInterval(this.#heartbeat)
    this.#heartbeat = undefined
    this.#unsubscribe()
  }

  #startHeartbeat(): void {
    if (this.#heartbeat) return
    // One timer for every stream: a heartbeat per stream per interval without a timer per stream.
    this.#heartbeat = setInterval(() => {
      for (const stream of this.#streams) {
        if (stream.pending === null) this.#write(stream, this.#heartbeatMessage(stream))
      }
    }, this.#o.heartbeatMs)
    this.#heartbeat.unref()
  }

  #deliver(stream: Stream, events: RecordedRevocationEvent[]): void {
    if (stream.pending !== null) {
      stream.pending.push(...events)
      return
    }
    const fresh = events.filter((e) => e.cursor > stream.sent)
    if (fresh.length === 0) return
    stream.sent = fresh[fresh.length - 1]!.cursor
    this.#write(stream, fresh.map(revocationMessage).join(''))
  }

  #write(stream: Stream, message: string): void {
    const { res } = stream
    if (res.destroyed || res.writableEnded) return
    res.write(message)
    if (res.writableLength > MAX_UNSENT_BYTES) {
      this.#o.log.warn(
        { unsentBytes: res.writableLength },
        'revocation subscriber is not reading; disconnected',
      )
      res.destroy()
    }
  }

  #heartbeatMessage(stream: Stream): string {
    const beat: FeedHeartbeat = { cursor: Math.max(this.#o.fanout.cursor, stream.sent), time: this.#o.now() }
    return `event: heartbeat\ndata: ${JSON.stringify(beat)}\n\n`
  }
}

function revocationMessage(event: RecordedRevocationEvent): string {
  return `event: revocation\nid: ${event.cursor}\ndata: ${JSON.stringify(event)}\n\n`
}

/** Resolves when the socket can take more, or is gone. */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done)
      res.off('close', done)
      resolve()
    }
    res.on('drain', done)
    res.on('close', done)
  })
}
