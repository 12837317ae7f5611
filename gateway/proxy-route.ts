/**
 * The catch-all route every proxied request takes: normalise the path, match the route table, check the body
 * length, authenticate per the route, count it against the route's rate limit and the client's concurrency
 * cap, read the body (request-body.ts: small ones whole, before any upstream connection is used), then
 * forward with the headers upstream-request.ts decides (the client's identity headers stripped, the
 * gateway's attached). Bodies are never parsed here: the route's context has a single pass-through
 * content-type parser, so the raw bytes reach the upstream.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { KeygateError, toKeygateError } from '../lib/errors.js'
import type { ClientConcurrency } from './client-limits.js'
import type { GatewayMetrics } from './metrics.js'
import type { UpstreamProxy } from './proxy.js'
import type { RouteRateLimits } from './rate-limits.js'
import { hasBody, type RequestBodies } from './request-body.js'
import { parseRequestPath } from './request-path.js'
import type { GatewayRoute, RouteTable } from './route-table.js'
import type { UpstreamRequestHeaders } from './upstream-request.js'

export interface ProxyRouteOptions {
  table: RouteTable
  proxy: UpstreamProxy
  limits: RouteRateLimits
  upstreamHeaders: UpstreamRequestHeaders
  bodies: RequestBodies
  clients: ClientConcurrency
  metrics: GatewayMetrics
  /** HTTP methods to proxy (every method Fastify knows, minus OPTIONS when CORS answers it). */
  methods: string[]
}

/**
 * What the catch-all answers: the upstream's answer as it came, of any media type, never parsed or
 * serialized here. The gateway's own refusals (no route, authentication, rate limits, an upstream that
 * fails) are the catalogue's error body, documented beside it.
 */
const ProxySchema = {
  summary: 'Proxied to the upstream of the longest matching route prefix (GATEWAY_ROUTES)',
  response: {
    '2xx': {
      description:
        "The upstream's answer, relayed as it came: its status, headers (hop-by-hop ones removed) and body " +
        'of any media type. An upstream 4xx or 5xx is relayed the same way, with its own body',
      content: { '*/*': { schema: {} } },
    },
    '3xx': {
      description: "The upstream's redirect or 304, relayed as it came",
      content: { '*/*': { schema: {} } },
    },
  },
} as const

/** Registers the proxied catch-all route (an encapsulated plugin: its body parsing stays its own). */
export async function proxyRoute(app: FastifyInstance, options: ProxyRouteOptions): Promise<void> {
  const { table, proxy, limits, upstreamHeaders, bodies, clients, metrics } = options

  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, _payload, done) => done(null))

  async function handle(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    let route: GatewayRoute | undefined
    try {
      const { path, query } = parseRequestPath(request.url)
      route = table.match(path)
      if (route === undefined) throw new KeygateError('KG_ROUTE_NOT_FOUND')
      bodies.checkDeclaredLength(request)
      const caller = route.authenticates ? await app.auth.authenticate(request, route.auth) : null
      await limits.check(request, route, caller)
      const headers = upstreamHeaders.build(request, route, caller)
      const client = clients.clientOf(request, caller)
      clients.enter(client)
      try {
        const body = hasBody(request) ? await bodies.read(request) : undefined
        return await proxy.forward(request, reply, route, route.targetPath(path) + query, headers, body)
      } finally {
        clients.leave(client)
      }
    } catch (err) {
      metrics.refused(route, toKeygateError(err).code)
      throw err
    }
  }

  app.route({ method: options.methods, url: '/*', schema: ProxySchema, handler: handle })
}
