/**
 * The proxy: one undici pool per upstream (keep-alive, no pipelining), each route allowed only part of its
 * upstream's connections (503 KG_ROUTE_BUSY over it, so a flood on one route leaves the others room),
 * request bodies as request-body.ts hands them (small ones whole, large ones streamed), answers streamed back
 * (an answer that arrived whole in one read is relayed as one buffer, see response-relay.ts), and upstream
 * failures mapped to 502/504 without passing on a word of what went wrong upstream.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
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

/** What a refused request is told to wait when its route is busy, in seconds. */
export const ROUTE_BUSY_RETRY_AFTER_S = 1

export interface UpstreamProxyOptions {
  upstreams: Iterable<Upstream>
  routes: Iterable<GatewayRoute>
  /** Most connections per upstream. */
  connections: number
  /** Most upstream exchanges one route may have in progress (at most `connections`). */
  routeConnections: number
  metrics: GatewayMetrics
}

/** A route's exchanges in progress upstream, against its cap. */
interface RouteSlots {
  inFlight: number
  readonly max: number
}

/** One request on its way through the proxy, and how its promise settles. */
interface Exchange {
  readonly request: FastifyRequest
  readonly reply: FastifyReply
  readonly route: GatewayRoute
  readonly slots: RouteSlots
  readonly resolve: (reply: FastifyReply) => void
  readonly reject: (error: unknown) => void
}

/** Forwards requests to upstreams over pooled connections. */
export class UpstreamProxy {
  readonly #pools = new Map<string, Pool>()
  readonly #slots = new Map<GatewayRoute, RouteSlots>()
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
    settled: (exchange) => {
      exchange.slots.inFlight--
    },
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
    for (const route of options.routes) {
      this.#slots.set(route, { inFlight: 0, max: options.routeConnections })
    }
    this.#metrics = options.metrics
  }

  /**
   * Sends the request to the route's upstream at `path` (path and query) with `headers` and `body` (see
   * request-body.ts), and streams the answer back through `reply`.
   * @throws KeygateError KG_ROUTE_BUSY (503) when the route already has all the exchanges it may
   */
  forward(
    request: FastifyRequest,
    reply: FastifyReply,
    route: GatewayRoute,
    path: string,
    headers: UpstreamHeaders,
    body: Buffer | Readable | undefined,
  ): Promise<FastifyReply> {
    const slots = this.#slots.get(route)!
    if (slots.inFlight >= slots.max) {
      // A large body's stream stops reading the client; the answer closes the connection.
      if (body instanceof Readable) body.destroy()
      throw new KeygateError('KG_ROUTE_BUSY', {
        headers: { 'retry-after': String(ROUTE_BUSY_RETRY_AFTER_S) },
      })
    }
    slots.inFlight++
    return new Promise((resolve, reject) => {
      const exchange: Exchange = { request, reply, route, slots, resolve, reject }
      this.#pools.get(route.upstream.name)!.dispatch(
        {
          path,
          method: request.method as Dispatcher.HttpMethod,
          headers,
          body,
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
