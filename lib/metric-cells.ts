/**
 * Metrics counted on the request path without prom-client's per-call work: prom-client's
 * `labels(...).inc()` hashes and validates its labels on every call, so hot counters count into cells added
 * to the counters at each scrape, and the HTTP duration histogram keeps its own series per route, method
 * and status, rendering what prom-client's histogram would.
 */
import type { Counter, LabelValues } from 'prom-client'

/** One label set of a counter, bound once; `inc()` is a plain addition. */
export interface CounterCell {
  inc(): void
}

/**
 * Hot-path counting for a prom-client counter: `cell(labels)` binds a label set once, its `inc()` adds to a
 * number, and `flush(counter)` (called from the counter's `collect`, so at every scrape) adds what
 * accumulated. prom-client's own `labels(...).inc()` hashes and validates the labels on every call.
 * @example
 * const cells = new CounterCells<'result'>()
 * new Counter({ name, help, labelNames: ['result'], collect() { cells.flush(this) } })
 * const hits = cells.cell({ result: 'hit' })
 * hits.inc()
 */
export class CounterCells<L extends string> {
  readonly #cells: Array<{ labels: LabelValues<L>; pending: number }> = []

  cell(labels: LabelValues<L>): CounterCell {
    const cell = { labels, pending: 0 }
    this.#cells.push(cell)
    return {
      inc() {
        cell.pending++
      },
    }
  }

  /** Adds the counts made since the last flush to `counter`. */
  flush(counter: Counter<L>): void {
    for (const cell of this.#cells) {
      if (cell.pending === 0) continue
      counter.inc(cell.labels, cell.pending)
      cell.pending = 0
    }
  }
}

/**
 * A cell per key (a route, an issuer) whose label values are fixed for it, bound the first time the key
 * is counted; afterwards counting is a map lookup and an addition.
 * @example
 * const proxied = new KeyedCells(cells, (route: GatewayRoute) => ({ route: route.prefix, outcome: 'proxied' }))
 * proxied.inc(route)
 */
export class KeyedCells<K, L extends string> {
  readonly #bound = new Map<K, CounterCell>()
  readonly #cells: CounterCells<L>
  readonly #labelsOf: (key: K) => LabelValues<L>

  constructor(cells: CounterCells<L>, labelsOf: (key: K) => LabelValues<L>) {
    this.#cells = cells
    this.#labelsOf = labelsOf
  }

  inc(key: K): void {
    let cell = this.#bound.get(key)
    if (cell === undefined) {
      cell = this.#cells.cell(this.#labelsOf(key))
      this.#bound.set(key, cell)
    }
    cell.inc()
  }
}

/** Upper bounds of the HTTP request-duration buckets, in seconds. */
export const REQUEST_DURATION_BUCKETS_S = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/** One line of the exposition. */
interface DurationValue {
  metricName: string
  labels: Record<string, string | number>
  value: number
}

/** The observations of one route, method and status. */
interface DurationSeries {
  readonly labels: { route: string; method: string; status: number }
  /** Observations per bucket (not cumulative), the last one past every bound. */
  readonly counts: Float64Array
  sum: number
  count: number
}

/**
 * `keygate_http_request_duration_seconds`, a Prometheus histogram by route, method and status, exposed
 * through the registry like prom-client's own (same name, labels, buckets and text). It exists because
 * prom-client's `observe()` converts, validates and hashes its label object on every request; here a request
 * costs three map lookups and a bucket search.
 */
export class RequestDurations {
  readonly name = 'keygate_http_request_duration_seconds'
  readonly help = 'HTTP requests by route, method and status'
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  readonly #bounds: readonly number[]
  readonly #series = new Map<string, Map<string, Map<number, DurationSeries>>>()

  constructor(bounds: readonly number[]) {
    this.#bounds = bounds
  }

  observe(route: string, method: string, status: number, seconds: number): void {
    let byMethod = this.#series.get(route)
    if (byMethod === undefined) this.#series.set(route, (byMethod = new Map()))
    let byStatus = byMethod.get(method)
    if (byStatus === undefined) byMethod.set(method, (byStatus = new Map()))
    let series = byStatus.get(status)
    if (series === undefined) {
      series = {
        labels: { route, method, status },
        counts: new Float64Array(this.#bounds.length + 1),
        sum: 0,
        count: 0,
      }
      byStatus.set(status, series)
    }
    let bucket = 0
    while (bucket < this.#bounds.length && seconds > this.#bounds[bucket]!) bucket++
    series.counts[bucket]!++
    series.sum += seconds
    series.count++
  }

  /** What the registry renders (prom-client's histogram shape: buckets, `+Inf`, `_sum`, `_count`). */
  get(): { name: string; help: string; type: string; values: DurationValue[]; aggregator: string } {
    const values: DurationValue[] = []
    for (const byMethod of this.#series.values()) {
      for (const byStatus of byMethod.values()) {
        for (const series of byStatus.values()) {
          let cumulative = 0
          this.#bounds.forEach((le, i) => {
            cumulative += series.counts[i]!
            values.push({
              metricName: `${this.name}_bucket`,
              labels: { le, ...series.labels },
              value: cumulative,
            })
          })
          values.push({
            metricName: `${this.name}_bucket`,
            labels: { le: '+Inf', ...series.labels },
            value: series.count,
          })
          values.push({ metricName: `${this.name}_sum`, labels: series.labels, value: series.sum })
          values.push({ metricName: `${this.name}_count`, labels: series.labels, value: series.count })
        }
      }
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator }
  }

  reset(): void {
    this.#series.clear()
  }
}
