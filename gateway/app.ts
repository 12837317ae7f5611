/**
 * The gateway: the one door clients use. It verifies tokens locally (the shared plugin), applies each route's
 * policy, and proxies to the upstreams with identity they can verify. `buildGateway` only builds; see
 * server.ts for listening.
 */
import cors from '@fastify/cors'
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { auth } from '@keygate/fastify-auth'
import { authOptionsFromConfig } from '../lib/auth-config.js'
import { commaList } from '../lib/config.js'
import { registerErrorHandling } from '../lib/errors.js'
import { GATEWAY_JWKS_PATH } from '../lib/identity/constants.js'
import { JwksSchema } from '../lib/openapi.js'
import { operations } from '../lib/operations.js'
import {
  createLogger,
  listenerTimeouts,
  registerHttpHygiene,
  serverOptions,
  trustedProxies,
} from '../lib/server.js'
import { AssertionSigner, GATEWAY_JWKS_MAX_AGE_S } from './assertion-signer.js'
import { ClientConcurrency } from './client-limits.js'
import { assertionKeyFile, type GatewayConfig, routeConnections } from './config.js'
import { GatewayMetrics } from './metrics.js'
import { UpstreamProxy } from './proxy.js'
import { proxyRoute } from './proxy-route.js'
import { RouteRateLimits } from './rate-limits.js'
import { RequestBodies } from './request-body.js'
import type { RouteFile } from './route-file.js'
import { loadRouteTable, RouteTable } from './route-table.js'
import { staticApp } from './static-app.js'
import { UpstreamRequestHeaders } from './upstream-request.js'

/** How long browsers may cache a CORS preflight answer, in seconds. */
export const CORS_MAX_AGE_S = 600
/** Methods CORS preflights allow. */
const CORS_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']
/** Response headers a browser script may read. */
const CORS_EXPOSED_HEADERS = ['x-request-id', 'retry-after', 'www-authenticate']

export interface GatewayOptions {
  config: GatewayConfig
  logger?: FastifyBaseLogger
  /** Milliseconds since the epoch (token and assertion clocks). */
  now?: () => number
  /** A route table given directly, instead of GATEWAY_ROUTES_FILE or the default one. */
  routes?: RouteFile
}

/**
 * Builds the gateway; never listens.
 * @example
 * const app = await buildGateway({ config: loadGatewayConfig() })
 * const res = await app.inject('/healthz')
 */
export async function buildGateway(options: GatewayOptions): Promise<FastifyInstance> {
  const { config } = options
  const upstreams = {
    issuer: config.ISSUER_URL,
    profile: config.PROFILE_URL,
    orders: config.ORDERS_URL,
    files: config.FILES_URL,
  }
  const defaults = {
    timeoutMs: config.GATEWAY_UPSTREAM_TIMEOUT,
    rateLimit: config.GATEWAY_RATE_LIMIT,
  }
  const table = options.routes
    ? RouteTable.compile(options.routes, upstreams, defaults)
    : loadRouteTable(config.GATEWAY_ROUTES_FILE, upstreams, defaults)
  const signer = await AssertionSigner.open({
    keyFile: assertionKeyFile(config),
    issuer: config.GATEWAY_URL,
    ttlS: config.GATEWAY_ASSERTION_TTL / 1000,
    ...(options.now ? { now: options.now } : {}),
  })

  const timeouts = listenerTimeouts(config)
  checkRouteTimeouts(table, timeouts.idleMs)
  const connectionsPerRoute = routeConnections(config)

  const logger =
    options.logger ?? createLogger({ name: 'gateway', level: config.LOG_LEVEL, pretty: config.LOG_PRETTY })
  // Requests passed on are logged at debug, refusals and failures at info (see FailuresLogController).
  const app = Fastify(
    serverOptions({
      logger,
      trustProxy: trustedProxies(config.GATEWAY_TRUST_PROXY, 'GATEWAY_TRUST_PROXY'),
      requestLog: 'failures',
      timeouts,
    }),
  )
  registerErrorHandling(app)
  // Before anything is proxied; proxied answers keep the upstream's headers.
  registerHttpHygiene(app, { apiAnswers: false })
  await app.register(operations, { component: 'gateway' })
  await app.register(auth, {
    ...authOptionsFromConfig(config),
    defaultAuth: { mode: 'none' },
    ...(options.now ? { now: options.now } : {}),
  })

  const corsOrigins = commaList(config.GATEWAY_CORS_ORIGINS)
  if (corsOrigins.length > 0) {
    // With CORS on, the gateway answers every OPTIONS itself (preflights never reach an upstream).
    await app.register(cors, {
      origin: corsOrigins,
      credentials: true,
      methods: CORS_METHODS,
      exposedHeaders: CORS_EXPOSED_HEADERS,
      maxAge: CORS_MAX_AGE_S,
      strictPreflight: false,
    })
  }

  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id)
    done()
  })

  // An exact route of the gateway's own: it wins over the `/.well-known` prefix proxied to the issuer.
  app.get(
    GATEWAY_JWKS_PATH,
    { logLevel: 'warn', schema: { response: { 200: JwksSchema } } },
    async (_request, reply) => {
      return reply.header('cache-control', `public, max-age=${GATEWAY_JWKS_MAX_AGE_S}`).send(signer.jwks)
    },
  )

  // The demo app at `/` (unless the route table claims it); exact routes win over the proxy's catch-all.
  await app.register(staticApp, { table })

  const metrics = new GatewayMetrics(app.metrics)
  const proxy = new UpstreamProxy({
    upstreams: table.upstreams.values(),
    routes: table.routes,
    connections: config.GATEWAY_UPSTREAM_CONNECTIONS,
    routeConnections: connectionsPerRoute,
    metrics,
  })
  app.addHook('preClose', (done) => {
    proxy.drain()
    done()
  })
  // Fastify closes the server (letting in-flight requests finish) before onClose hooks run.
  app.addHook('onClose', () => proxy.close())

  await app.register(proxyRoute, {
    table,
    proxy,
    limits: await RouteRateLimits.register(app, table.routes, {
      redisUrl: config.REDIS_URL,
      keyPrefix: config.REDIS_KEY_PREFIX,
    }),
    upstreamHeaders: new UpstreamRequestHeaders({
      identityHeaders: commaList(config.GATEWAY_STRIP_HEADERS, true),
      signer,
    }),
    bodies: new RequestBodies({
      bufferBytes: config.GATEWAY_BODY_BUFFER,
      limitBytes: config.GATEWAY_BODY_LIMIT,
      timeoutMs: config.GATEWAY_BODY_TIMEOUT,
      minRateBytesPerS: config.GATEWAY_BODY_MIN_RATE,
    }),
    clients: new ClientConcurrency(config.GATEWAY_CLIENT_CONCURRENCY),
    metrics,
    methods: app.supportedMethods.filter((m) => corsOrigins.length === 0 || m !== 'OPTIONS'),
  })
  return app
}

/**
 * A client waiting on a route's upstream sees no traffic on its connection: a route timeout as long as the
 * listener's idle timeout would have the connection closed under it.
 */
function checkRouteTimeouts(table: RouteTable, idleMs: number): void {
  for (const route of table.routes) {
    if (route.timeoutMs >= idleMs) {
      throw new Error(
        `keygate: invalid configuration: the timeout of route ${route.prefix} (${route.timeoutMs} ms) must be below HTTP_IDLE_TIMEOUT (${idleMs} ms)`,
      )
    }
  }
}
