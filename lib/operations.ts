/**
 * The operations surface of every component: `/healthz` (the process is alive), `/readyz` (its dependencies
 * are ready) and `/metrics` (Prometheus text, one registry per instance so several instances can share a
 * process in tests).
 */
import fp from 'fastify-plugin'
import type {} from './auth/plugin.js'
import { collectDefaultMetrics, type Metric, Registry } from 'prom-client'
import { REQUEST_DURATION_BUCKETS_S, RequestDurations } from './metric-cells.js'

/** A readiness check answers `true` when ready, or a short reason why not. */
export type ReadinessCheck = () => true | string | Promise<true | string>

/** The named readiness checks of one instance. */
export class Readiness {
  readonly #checks = new Map<string, ReadinessCheck>()

  add(name: string, check: ReadinessCheck): void {
    this.#checks.set(name, check)
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
    return { ready: Object.values(checks).every((c) => c === true), checks }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** This instance's Prometheus registry; components register their metrics here. */
    metrics: Registry
    /** This instance's readiness checks, reported by `/readyz`. */
    readiness: Readiness
  }
}

export interface OperationsOptions {
  /** Component name, added as a `component` label to every metric. */
  component: string
}

/** Registers `/healthz`, `/readyz`, `/metrics` and an HTTP request-duration histogram. */
export const operations = fp<OperationsOptions>(
  async (app, options) => {
    const registry = new Registry()
    registry.setDefaultLabels({ component: options.component })
    collectDefaultMetrics({ register: registry })
    app.decorate('metrics', registry)
    app.decorate('readiness', new Readiness())

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

    // Public on every component, whatever the auth plugin's default.
    const config = { auth: { mode: 'none' as const } }
    app.get('/healthz', { logLevel: 'warn', config }, async () => ({ status: 'ok' }))
    app.get('/readyz', { logLevel: 'warn', config }, async (_request, reply) => {
      const status = await app.readiness.status()
      return reply
        .code(status.ready ? 200 : 503)
        .send({ status: status.ready ? 'ready' : 'not_ready', ...status })
    })
    app.get('/metrics', { logLevel: 'warn', config }, async (_request, reply) => {
      return reply.type(registry.contentType).send(await registry.metrics())
    })
  },
  { name: 'keygate-operations', fastify: '5.x' },
)
