/**
 * Request bodies on their way upstream: the gateway never hands an upstream connection to a request whose
 * body has not arrived. A body up to the buffer size is read whole first, within a time limit (408 when it
 * runs out), and sent as one buffer; of a larger one the first buffer-size bytes are read the same way, then
 * the rest streams on, and must keep arriving at a minimum average rate (else 408, and the upstream request
 * is aborted). Bodies over the body limit are refused (413) however they are framed. A request without a body
 * (no `Content-Length`, or 0, and no `Transfer-Encoding`) never comes here.
 */
import type { FastifyRequest } from 'fastify'
import type { IncomingMessage } from 'node:http'
import { Readable } from 'node:stream'
import { KeygateError } from '../lib/errors.js'

/** How often a streamed body's rate is checked, in milliseconds. */
export const BODY_RATE_CHECK_INTERVAL_MS = 1_000

export interface RequestBodyOptions {
  /** Bodies up to this many bytes are read whole before anything is sent upstream. */
  bufferBytes: number
  /** Largest body forwarded, in bytes (413 above). */
  limitBytes: number
  /** Time to receive a buffered body, or the first `bufferBytes` of a larger one, in milliseconds. */
  timeoutMs: number
  /**
   * Least average rate of a streamed body, in bytes per second, counted from the request's start with
   * `timeoutMs` of slack: by time t, at least `minRate × (t − timeoutMs)` bytes must have arrived.
   */
  minRateBytesPerS: number
}

/** Whether a request carries a body: two header lookups, nothing else (bodiless requests pay no more). */
export function hasBody(request: FastifyRequest): boolean {
  const headers = request.headers
  if (headers['transfer-encoding'] !== undefined) return true
  const declared = headers['content-length']
  return declared !== undefined && declared !== '0'
}

/** Reads request bodies per the gateway's body settings (see the file comment). */
export class RequestBodies {
  readonly #options: RequestBodyOptions

  constructor(options: RequestBodyOptions) {
    this.#options = options
  }

  /** Refuses (413) a request whose declared length is over the limit, before anything else is done. */
  checkDeclaredLength(request: FastifyRequest): void {
    const declared = request.headers['content-length']
    if (declared !== undefined && Number(declared) > this.#options.limitBytes) throw payloadTooLarge()
  }

  /**
   * The body to send upstream: the whole body as one buffer when it fits the buffer size, else a stream
   * of it that starts once the first buffer-size bytes are in.
   * @throws KeygateError KG_REQUEST_TIMEOUT (408), KG_PAYLOAD_TOO_LARGE (413), KG_INVALID_REQUEST (the
   * client went away)
   */
  read(request: FastifyRequest): Promise<Buffer | Readable> {
    return new Promise((resolve, reject) => {
      new BodyHead(request.raw, this.#options, resolve, reject).start()
    })
  }
}

/** The first part of a body (all of it when it is small), read with a deadline. */
class BodyHead {
  readonly #raw: IncomingMessage
  readonly #options: RequestBodyOptions
  readonly #resolve: (body: Buffer | Readable) => void
  readonly #reject: (err: unknown) => void
  readonly #startedAt = performance.now()
  readonly #chunks: Buffer[] = []
  #received = 0
  #timer: NodeJS.Timeout | undefined
  /** Whether the declared length fits the buffer size: then the body is read to its end, whatever happens. */
  readonly #whole: boolean

  constructor(
    raw: IncomingMessage,
    options: RequestBodyOptions,
    resolve: (body: Buffer | Readable) => void,
    reject: (err: unknown) => void,
  ) {
    this.#raw = raw
    this.#options = options
    this.#resolve = resolve
    this.#reject = reject
    const declared = raw.headers['content-length']
    this.#whole =
      raw.headers['transfer-encoding'] === undefined &&
      declared !== undefined &&
      Number(declared) <= options.bufferBytes
  }

  start(): void {
    const raw = this.#raw
    if (raw.readableEnded) return this.#resolve(Buffer.alloc(0))
    if (raw.destroyed) return this.#reject(clientAborted())
    this.#timer = setTimeout(this.#onTimeout, this.#options.timeoutMs)
    raw.on('data', this.#onData)
    raw.on('end', this.#onEnd)
    raw.on('error', this.#onClose)
    raw.on('close', this.#onClose)
  }

  #detach(): void {
    clearTimeout(this.#timer)
    const raw = this.#raw
    raw.off('data', this.#onData)
    raw.off('end', this.#onEnd)
    raw.off('error', this.#onClose)
    raw.off('close', this.#onClose)
  }

  readonly #onData = (chunk: Buffer): void => {
    this.#chunks.push(chunk)
    this.#received += chunk.length
    if (this.#received > this.#options.limitBytes) {
      this.#detach()
      this.#raw.pause()
      this.#reject(payloadTooLarge())
    } else if (this.#received >= this.#options.bufferBytes && !this.#whole) {
      // A buffer's worth and more to come: what is here goes first, the rest streams behind it.
      this.#detach()
      this.#raw.pause()
      this.#resolve(
        new RateGuardedBody(this.#raw, this.#chunks, this.#received, this.#startedAt, this.#options),
      )
    }
  }

  readonly #onEnd = (): void => {
    this.#detach()
    const chunks = this.#chunks
    this.#resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.#received))
  }

  readonly #onClose = (): void => {
    if (this.#raw.readableEnded) return
    this.#detach()
    this.#reject(clientAborted())
  }

  readonly #onTimeout = (): void => {
    this.#detach()
    this.#raw.pause()
    this.#reject(requestTimeout())
  }
}

/**
 * The rest of a large body: what was read first, then the client's stream with backpressure, counted
 * against the body limit and checked for its rate every BODY_RATE_CHECK_INTERVAL_MS. Destroying it (a
 * failed check, or undici giving up) stops reading the client.
 */
class RateGuardedBody extends Readable {
  readonly #raw: IncomingMessage
  readonly #options: RequestBodyOptions
  /** When the body started, moved later by every wait on the upstream (the client is not slow then). */
  #startedAt: number
  #received: number
  /** Since when the upstream has not taken what we have (backpressure), or undefined. */
  #waitingSince: number | undefined
  readonly #check: NodeJS.Timeout

  constructor(
    raw: IncomingMessage,
    head: Buffer[],
    received: number,
    startedAt: number,
    options: RequestBodyOptions,
  ) {
    super()
    this.#raw = raw
    this.#options = options
    this.#startedAt = startedAt
    this.#received = received
    let taken = true
    for (const chunk of head) taken = this.push(chunk)
    if (!taken) this.#waitingSince = performance.now()
    raw.on('data', this.#onData)
    raw.on('end', this.#onEnd)
    raw.on('error', this.#onClose)
    raw.on('close', this.#onClose)
    this.#check = setInterval(this.#checkRate, BODY_RATE_CHECK_INTERVAL_MS)
    this.#check.unref()
  }

  override _read(): void {
    if (this.#waitingSince !== undefined) {
      this.#startedAt += performance.now() - this.#waitingSince
      this.#waitingSince = undefined
    }
    this.#raw.resume()
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    clearInterval(this.#check)
    const raw = this.#raw
    raw.off('data', this.#onData)
    raw.off('end', this.#onEnd)
    raw.off('error', this.#onClose)
    raw.off('close', this.#onClose)
    raw.pause()
    callback(error)
  }

  readonly #onData = (chunk: Buffer): void => {
    this.#received += chunk.length
    if (this.#received > this.#options.limitBytes) {
      this.destroy(payloadTooLarge())
      return
    }
    if (!this.push(chunk)) {
      this.#raw.pause()
      this.#waitingSince = performance.now()
    }
  }

  readonly #onEnd = (): void => {
    clearInterval(this.#check)
    this.push(null)
  }

  readonly #onClose = (): void => {
    if (!this.#raw.readableEnded) this.destroy(clientAborted())
  }

  readonly #checkRate = (): void => {
    if (this.#waitingSince !== undefined) return
    const { minRateBytesPerS, timeoutMs } = this.#options
    const owed = (minRateBytesPerS * (performance.now() - this.#startedAt - timeoutMs)) / 1000
    if (this.#received < owed) this.destroy(requestTimeout())
  }
}

function payloadTooLarge(): KeygateError {
  // The client may still be sending: close the connection rather than read the rest.
  return new KeygateError('KG_PAYLOAD_TOO_LARGE', { headers: { connection: 'close' } })
}

function requestTimeout(): KeygateError {
  return new KeygateError('KG_REQUEST_TIMEOUT', { headers: { connection: 'close' } })
}

function clientAborted(): KeygateError {
  return new KeygateError('KG_INVALID_REQUEST', { message: 'The client aborted the request' })
}
