/**
 * The proxy: one undici pool per upstream (keep-alive, no pipelining), request and response bodies streamed
 * through without buffering (an answer that arrived whole in one read is relayed as one buffer, see
 * response-relay.ts), a body limit enforced before and while streaming, and upstream failures mapped
 * to 502/504 without passing on a word of what went wrong upstream.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { IncomingMessage } from 'node:http'
import { Readable } from 'node:stream'
import { type Dispatcher, Pool } from 'undici'
import { KeygateError } from '../lib/errors.js'
import type { GatewayMetrics, UpstreamErrorKind } from './metrics.js'
import type { GatewayRoute, Upstream } from './route-table.js'
import { type RelayTarget, ResponseRelay } from './response-relay.js'
import { copyResponseHeaders } from './response-headers.js'
import type { UpstreamHeaders } from './upstream-request.js'

/** Time to establish a connection to an upstream, in milliseconds. */
export const UPSTREAM_CONNECT_TIMEOUT_MS = 5_000
/** Idle pooled connections are closed after this, in milliseconds (below Node's 5 s server default). */
export const UPSTREAM_KEEP_ALIVE_TIMEOUT_MS = 4_000

export interface UpstreamProxyOptions {
  upstreams: Iterable<Upstream>
  /** Most connections per upstream. */
  connections: number
  /** Largest request body forwarded, in bytes. */
  bodyLimit: number
  metrics: GatewayMetrics
}

/** One request on its way through the proxy, and how its promise settles. */
interface Exchange {
  readonly request: FastifyRequest
  readonly reply: FastifyReply
  readonly route: GatewayRoute
  readonly resolve: (reply: FastifyReply) => void
  readonly reject: (error: unknown) => void
}

/** Forwards requests to upstreams over pooled connections. */
export class UpstreamProxy {
  readonly #pools = new Map<string, Pool>()
  readonly #bodyLimit: number
  readonly #metrics: GatewayMetrics
  #draining = false
  /** Where every relay hands its answer: methods, not per-request closures. */
  readonly #relayTarget: RelayTarget<Exchange> = {
    respond: (exchange, statusCode, responseHeaders, body) => {
      const { reply, route } = exchange
      try {
        this.#metrics.proxied(route)
        reply.code(statusCode)
        copyResponseHeaders(reply, responseHeaders)
        // While draining, no connection is kept alive past its response, so the server can close.
        if (this.#draining) reply.header('connection', 'close')
        exchange.resolve(reply.send(body))
      } catch (err) {
        exchange.reject(err)
      }
    },
    fail: (exchange, err) => exchange.reject(this.#failure(exchange.request, exchange.route, err)),
  }

  constructor(options: UpstreamProxyOptions) {
    for (const upstream of options.upstreams) {
      this.#pools.set(
        upstream.name,
        new Pool(upstream.origin, {
          connections: options.connections,
          pipelining: 1,
          connectTimeout: UPSTREAM_CONNECT_TIMEOUT_MS,
          keepAliveTimeout: UPSTREAM_KEEP_ALIVE_TIMEOUT_MS,
        }),
      )
    }
    this.#bodyLimit = options.bodyLimit
    this.#metrics = options.metrics
  }

  /** Refuses (413) a request whose declared length is over the limit, before anything else is done. */
  checkDeclaredLength(request: FastifyRequest): void {
    const declared = request.headers['content-length']
    if (declared !== undefined && Number(declared) > this.#bodyLimit) throw payloadTooLarge()
  }

  /**
   * Sends the request to the route's upstream at `path` (path and query) with `headers`, and streams the
   * answer back through `reply`.
   */
  forward(
    request: FastifyRequest,
    reply: FastifyReply,
    route: GatewayRoute,
    path: string,
    headers: UpstreamHeaders,
  ): Promise<FastifyReply> {
    return new Promise((resolve, reject) => {
      const exchange: Exchange = { request, reply, route, resolve, reject }
      this.#pools.get(route.upstream.name)!.dispatch(
        {
          path,
          method: request.method as Dispatcher.HttpMethod,
          headers,
          body: this.#body(request),
          headersTimeout: route.timeoutMs,
          bodyTimeout: route.timeoutMs,
        },
        new ResponseRelay(this.#relayTarget, exchange),
      )
    })
  }

  /** From now on responses close their connections (called when the gateway starts shutting down). */
  drain(): void {
    this.#draining = true
  }

  /** Closes every pool once the requests it carries have finished. */
  async close(): Promise<void> {
    await Promise.all([...this.#pools.values()].map((pool) => pool.close()))
  }

  #body(request: FastifyRequest): Readable | undefined {
    const headers = request.headers
    if (headers['transfer-encoding'] !== undefined)
      return Readable.from(limited(request.raw, this.#bodyLimit))
    const declared = headers['content-length']
    // A declared length was checked against the limit, and Node never reads past it.
    return declared === undefined || declared === '0' ? undefined : request.raw
  }

  /** The one place where undici's failures become catalogue errors (and metrics, and a log line). */
  #failure(request: FastifyRequest, route: GatewayRoute, err: unknown): KeygateError {
    if (err instanceof KeygateError) return err
    // A client that went away mid-upload broke the exchange, not the upstream: nobody is left to answer.
    if (request.raw.destroyed && !request.raw.complete) {
      return new KeygateError('KG_INVALID_REQUEST', { message: 'The client aborted the request', cause: err })
    }
    const code = (err as { code?: unknown }).code
    const kind = upstreamErrorKind(typeof code === 'string' ? code : undefined)
    this.#metrics.upstreamError(route, kind)
    request.log.warn({ upstream: route.upstream.name, kind, code }, 'upstream request failed')
    return new KeygateError(kind === 'timeout' ? 'KG_UPSTREAM_TIMEOUT' : 'KG_UPSTREAM_UNAVAILABLE', {
      cause: err,
    })
  }
}

function upstreamErrorKind(code: string | undefined): UpstreamErrorKind {
  switch (code) {
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
      return 'timeout'
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'connect'
    case 'UND_ERR_SOCKET':
    case 'ECONNRESET':
    case 'EPIPE':
      return 'reset'
    default:
      return 'other'
  }
}

/** A chunked body, counted as it streams and cut off (413) at the limit. */
async function* limited(body: IncomingMessage, limit: number): AsyncIterable<Buffer> {
  let received = 0
  for await (const chunk of body as AsyncIterable<Buffer>) {
    received += chunk.length
    if (received > limit) throw payloadTooLarge()
    yield chunk
  }
}

function payloadTooLarge(): KeygateError {
  // The client may still be sending: close the connection rather than read the rest.
  return new KeygateError('KG_PAYLOAD_TOO_LARGE', { headers: { connection: 'close' } })
}
