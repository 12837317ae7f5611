/**
 * The operations surface of every component. `/healthz` (the process is alive) answers on the public port;
 * `/readyz` (its dependencies are ready, check by check) and `/metrics` (Prometheus text, one registry per
 * instance so several instances can share a process in tests) answer only on the component's ops listener —
 * its own small Fastify instance, `app.operations`, which the entry point opens on OPS_HOST (loopback by
 * default) and the ops port. Nothing a client reaches, directly or through a gateway prefix, serves them.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type {} from '@keygate/fastify-auth'
import { answerClientError, registerErrorHandling } from './errors.js'
import { collectDefaultMetrics, type Metric, Registry } from 'prom-client'
import { REQUEST_DURATION_BUCKETS_S, RequestDurations } from './metric-cells.js'
import { openApiDocument } from './openapi.js'
/** A readiness check answers `true` when ready, or a short reason why not. */
export type ReadinessCheck = () => true | string | Promise<true | string>

/** The named readiness checks of one instance. */
export class Readiness {
  readonly #checks = new Map<string, ReadinessCheck>()
  /** Checks reported in `/readyz` for information only: they never make the instance not ready. */
  readonly #informational = new Set<string>()

  /** Adds a check; `{ required: false }` reports it without letting it make the instance not ready. */
  add(name: string, check: ReadinessCheck, options: { required?: boolean } = {}): void {
    this.#checks.set(name, check)
    if (options.required === false) this.#informational.add(name)
    else this.#informational.delete(name)
  }

  async status(): Promise<{ ready: boolean; checks: Record<string, true | string> }> {
    const checks: Record<string, true | string> = {}
    for (const [name, check] of this.#checks) {
      try {
        checks[name] = await check()
      } catch (err) {
        checks[name] = (err as Error).message
      }
    }
    const ready = Object.entries(checks).every(([name, c]) => c === true || this.#informational.has(name))
    return { ready, checks }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** This instance's Prometheus registry; components register their metrics here. */
    metrics: Registry
    /** This instance's readiness checks, reported by `/readyz` on the ops listener. */
    readiness: Readiness
    /**
     * The ops listener of this instance: `/healthz`, `/readyz` and `/metrics`, as a Fastify instance of its
     * own that is built with the component and never listens by itself — `listen()` (lib/server.ts) opens it
     * on the ops port; tests `inject` into it. It closes with the instance.
     */
    operations: FastifyInstance
  }
}

export interface OperationsOptions {
  /** Component name, added as a `component` label to every metric. */
  component: string
}

/**
 * Registers `/healthz` and an HTTP request-duration histogram on the instance, and builds its ops listener
 * (`app.operations`).
 */
export const operations = fp<OperationsOptions>(
  async (app, options) => {
    // First, so that the document sees every route registered after it.
    await app.register(openApiDocument, { component: options.component })
    const registry = new Registry()
    registry.setDefaultLabels({ component: options.component })
    collectDefaultMetrics({ register: registry })
    app.decorate('metrics', registry)
    app.decorate('readiness', new Readiness())
    app.decorate('operations', buildOperations(app, registry))

    const duration = new RequestDurations(REQUEST_DURATION_BUCKETS_S)
    registry.registerMetric(duration as unknown as Metric)
    app.addHook('onResponse', (request, reply, done) => {
      duration.observe(
        request.routeOptions.url ?? 'unmatched',
        request.method,
        reply.statusCode,
        reply.elapsedTime / 1000,
      )
      done()
    })

    // Public on every component, whatever the auth plugin's default: it says only that the process answers.
    const config = { auth: { mode: 'none' as const } }
    app.get('/healthz', { logLevel: 'warn', config, schema: { response: { 200: HealthzSchema } } }, healthz)
  },
  { name: 'keygate-operations', fastify: '5.x' },
)

const healthz = async () => ({ status: 'ok' })
const HealthzSchema = {
  type: 'object',
  required: ['status'],
  properties: { status: { type: 'string', const: 'ok' } },
} as const

/** How long the ops listener waits on a client, in milliseconds (see ListenerTimeouts in lib/server.ts). */
export const OPS_TIMEOUTS = {
  headersMs: 5_000,
  requestMs: 10_000,
  keepAliveMs: 5_000,
  idleMs: 30_000,
} as const

/**
 * The ops listener's instance for `app`: its routes read `app`'s readiness checks and metrics registry, and
 * wait for `app` to have loaded (the checks are added while it loads). `/readyz` answers 503 from the
 * moment `app` starts closing, so a balancer stops sending before the drain ends.
 */
function buildOperations(app: FastifyInstance, registry: Registry): FastifyInstance {
  const ops = Fastify({
    loggerInstance: app.log.child({ listener: 'ops' }),
    return503OnClosing: true,
    // Its requests have no bodies and its clients are probes and scrapers: short, fixed timeouts, so a
    // stuck or slow local client cannot hold its connections.
    http: {
      headersTimeout: OPS_TIMEOUTS.headersMs,
      requestTimeout: OPS_TIMEOUTS.requestMs,
      connectionsCheckingInterval: 1_000,
    },
    requestTimeout: OPS_TIMEOUTS.requestMs,
    keepAliveTimeout: OPS_TIMEOUTS.keepAliveMs,
    connectionTimeout: OPS_TIMEOUTS.idleMs,
    clientErrorHandler: answerClientError,
  })
  registerErrorHandling(ops)
  let loaded = false
  let closing = false
  app.addHook('onReady', (done) => {
    loaded = true
    done()
  })
  app.addHook('preClose', (done) => {
    closing = true
    done()
  })
  app.addHook('onClose', () => ops.close())
  // Asking a closing instance to be ready would wait for a boot that never comes.
  ops.addHook('onRequest', async () => {
    if (!loaded && !closing) await app.ready()
  })
  ops.get('/healthz', { logLevel: 'warn' }, healthz)
  ops.get('/readyz', { logLevel: 'warn' }, async (_request, reply) => {
    const status = await app.readiness.status()
    if (closing) status.checks.shutdown = 'closing'
    const ready = status.ready && !closing
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', ...status, ready })
  })
  ops.get('/metrics', { logLevel: 'warn' }, async (_request, reply) => {
    return reply.type(registry.contentType).send(await registry.metrics())
  })
  return ops
}
