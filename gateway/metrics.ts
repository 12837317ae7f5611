/**
 * The gateway's own metrics, beside the HTTP histogram every component has: requests by route and outcome,
 * and upstream failures by kind.
 */
import { Counter, type Registry } from 'prom-client'
import { CounterCells, KeyedCells } from '@keygate/fastify-auth'
import type { GatewayRoute } from './route-table.js'

/** How a failed upstream exchange failed. */
export type UpstreamErrorKind = 'connect' | 'timeout' | 'reset' | 'other'

/** Route label of requests no route matched. */
const UNMATCHED = 'unmatched'

/** The gateway's counters, registered in the instance's registry (`app.metrics`). */
export class GatewayMetrics {
  readonly #requests: Counter<'route' | 'outcome'>
  readonly #upstreamErrors: Counter<'upstream' | 'kind'>
  /** Each route's commonest outcome, counted on the hot path with an addition. */
  readonly #proxied: KeyedCells<GatewayRoute, 'route' | 'outcome'>

  constructor(registry: Registry) {
    const proxiedCells = new CounterCells<'route' | 'outcome'>()
    this.#proxied = new KeyedCells(proxiedCells, (route) => ({ route: route.prefix, outcome: 'proxied' }))
    this.#requests = new Counter({
      name: 'keygate_gateway_requests_total',
      help: 'Requests by route prefix and outcome (proxied, or the error code that answered)',
      labelNames: ['route', 'outcome'],
      registers: [registry],
      collect() {
        proxiedCells.flush(this)
      },
    })
    this.#upstreamErrors = new Counter({
      name: 'keygate_gateway_upstream_errors_total',
      help: 'Failed upstream exchanges by upstream and kind (connect, timeout, reset, other)',
      labelNames: ['upstream', 'kind'],
      registers: [registry],
    })
  }

  /** A request the upstream answered (whatever its status). */
  proxied(route: GatewayRoute): void {
    this.#proxied.inc(route)
  }

  /** A request the gateway answered itself with an error `code`. */
  refused(route: GatewayRoute | undefined, code: string): void {
    this.#requests.labels(route?.prefix ?? UNMATCHED, code).inc()
  }

  upstreamError(route: GatewayRoute, kind: UpstreamErrorKind): void {
    this.#upstreamErrors.labels(route.upstream.name, kind).inc()
  }
}
