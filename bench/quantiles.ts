/**
 * Quantiles of latency samples the bench times itself (the load generators report their own), nearest
 * rank: the smallest sample with at least that share of them at or below it.
 */

/** The `q` quantile of `samples`; NaN when there are none. */
export function quantile(samples: readonly number[], q: number): number {
  const sorted = [...samples].sort((a, b) => a - b)
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN
}

/** `p50 … ms · p90 … ms · p99 … ms · max … ms`, in milliseconds to a tenth. */
export function quantiles(samples: readonly number[]): string {
  const q = (p: number) => quantile(samples, p).toFixed(1)
  return `p50 ${q(0.5)} ms · p90 ${q(0.9)} ms · p99 ${q(0.99)} ms · max ${q(1)} ms`
}
