/**
 * Counters on the request path without prom-client's per-call work: prom-client's `labels(...).inc()` hashes
 * and validates its labels on every call, so hot counters count into cells added to the counters at each
 * scrape. The verifier counts this way, and so does the gateway (which imports these from the package).
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
