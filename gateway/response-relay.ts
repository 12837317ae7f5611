/**
 * The undici dispatch handler of one proxied exchange: it hands the upstream's answer to the gateway as one
 * buffer when the whole answer arrived in the same read as its head (the common case for API calls), and as
 * a stream otherwise — from the first read that leaves the body incomplete on, with undici's backpressure.
 * Nothing is ever held back waiting: the choice is made before the read that carried the head is done, so a
 * slow or endless body (downloads, server-sent events) streams exactly as it did through `Pool.request`.
 * What the buffer saves is the per-request Readable, its listeners and the pipe into the reply, and a
 * separate write for the end of the body (what that is worth: docs/benchmarks.md, "Where the time goes").
 */
import type { IncomingHttpHeaders } from 'node:http'
import { Readable } from 'node:stream'
import { type Dispatcher, errors } from 'undici'

/**
 * Where the relayed answer goes (exactly one of the two is called, once), with the `exchange` the relay was
 * made for: one target serves every exchange, so a request makes no closures of its own.
 */
export interface RelayTarget<E> {
  /** The upstream answered: `body` is the whole body, a stream of it, or undefined when it had none. */
  respond(
    exchange: E,
    statusCode: number,
    headers: IncomingHttpHeaders,
    body: Buffer | Readable | undefined,
  ): void
  /** The exchange failed before anything could be relayed. */
  fail(exchange: E, error: Error): void
  /**
   * The upstream exchange is over — its answer ended, or it failed or was aborted — and its connection is
   * free again. Called once, after `respond` or `fail`.
   */
  settled(exchange: E): void
}

/** Relays one upstream response (see the file comment). */
export class ResponseRelay<E> implements Dispatcher.DispatchHandler {
  readonly #target: RelayTarget<E>
  readonly #exchange: E
  #controller: Dispatcher.DispatchController | undefined
  #statusCode = 0
  #headers: IncomingHttpHeaders = {}
  /** Body chunks while the whole answer may still arrive in the current read. */
  #chunks: Buffer[] = []
  #stream: Readable | undefined
  #relayed = false
  #finished = false
  #settled = false

  constructor(target: RelayTarget<E>, exchange: E) {
    this.#target = target
    this.#exchange = exchange
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
  ): void {
    // 1xx answers are informational; the real one follows.
    if (statusCode < 200) return
    this.#statusCode = statusCode
    this.#headers = headers
    // undici parses a whole socket read synchronously: by the time this runs, the body either ended in the
    // same read (relayed as a buffer) or did not (from here on, a stream).
    queueMicrotask(() => this.#startStreaming())
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#stream === undefined) this.#chunks.push(chunk)
    else if (!this.#stream.push(chunk)) controller.pause()
  }

  onResponseEnd(): void {
    this.#finished = true
    if (this.#stream !== undefined) {
      this.#stream.push(null)
    } else {
      const chunks = this.#chunks
      this.#relay(chunks.length === 0 ? undefined : chunks.length === 1 ? chunks[0] : Buffer.concat(chunks))
    }
    this.#settle()
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    const wasFinished = this.#finished
    this.#finished = true
    if (this.#stream !== undefined) {
      this.#stream.destroy(error)
    } else if (!this.#relayed && !wasFinished) {
      this.#relayed = true
      this.#target.fail(this.#exchange, error)
    }
    this.#settle()
  }

  #settle(): void {
    if (this.#settled) return
    this.#settled = true
    this.#target.settled(this.#exchange)
  }

  #startStreaming(): void {
    if (this.#relayed || this.#finished) return
    const controller = this.#controller!
    const stream = new Readable({
      read: () => controller.resume(),
      destroy: (error, callback) => {
        // The client went away (or the reply failed) before the upstream finished: stop the exchange.
        if (!this.#finished) {
          this.#finished = true
          controller.abort(error ?? new errors.RequestAbortedError())
        }
        this.#settle()
        callback(error)
      },
    })
    for (const chunk of this.#chunks) stream.push(chunk)
    this.#chunks = []
    this.#stream = stream
    this.#relay(stream)
  }

  #relay(body: Buffer | Readable | undefined): void {
    this.#relayed = true
    this.#target.respond(this.#exchange, this.#statusCode, this.#headers, body)
  }
}
