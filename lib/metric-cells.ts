/**
 * Metrics counted on the request path without prom-client's per-call work: the HTTP duration histogram keeps
 * its own series per route, method and status, rendering what prom-client's histogram would. Hot counters
 * count into cells (CounterCells, in @keygate/fastify-auth, whose verifier counts that way too).
 */

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
