/**
 * The operations surface of every component: `/healthz` (the process is alive), `/readyz` (its dependencies
 * are ready) and `/metrics` (Prometheus text, one registry per instance so several instances can share a
 * process in tests).
 */
import fp from 'fastify-plugin'
import type {} from './auth/plugin.js'
import { collectDefaultMetrics, Histogram, Registry } from 'prom-client'

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

    const duration = new Histogram({
      name: 'keygate_http_request_duration_seconds',
      help: 'HTTP requests by route, method and status',
      labelNames: ['route', 'method', 'status'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    })
    app.addHook('onResponse', async (request, reply) => {
      duration.observe(
        { route: request.routeOptions.url ?? 'unmatched', method: request.method, status: reply.statusCode },
        reply.elapsedTime / 1000,
      )
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
