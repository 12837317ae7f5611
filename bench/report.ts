/**
 * The bench's output: markdown tables of each scenario's runs, the ratios the issue sets targets for, and a
 * header saying how the figures were taken.
 */
import type { LoadResult } from './load/index.js'

/** One measured load against one stack. */
export interface CaseRun {
  stack: string
  run: number
  load: LoadResult
  /** CPU time of the stack's own process(es) per request, in microseconds (the upstream runs apart). */
  cpuUsPerRequest: number | undefined
  /** Resident memory of the stack's process(es) after the run, in bytes. */
  rssBytes: number | undefined
}

/** A ratio with the target it is measured against. */
export interface Ratio {
  name: string
  value: number
  /** `>= x` or `<= x`, as the issue states it; absent for ratios reported without a target. */
  target?: { op: '>=' | '<='; value: number }
}

export interface ScenarioReport {
  id: string
  title: string
  runs: CaseRun[]
  /** Ratios per run (index 0: run 1). */
  ratios: Ratio[][]
  notes: string[]
  /** Extra markdown (issuer figures, micro-benchmark tables). */
  extra?: string
}

const int = (n: number) => Math.round(n).toLocaleString('en-US')
const ms = (n: number) => (n >= 10 ? n.toFixed(1) : n.toFixed(2))
const mb = (bytes: number | undefined) =>
  bytes === undefined || bytes === 0 ? '–' : `${(bytes / 2 ** 20).toFixed(0)} MB`

/** `value` against its target: `1.07× (≥ 0.95 ✓)`. */
export function formatRatio(r: Ratio): string {
  const shown = `${r.value.toFixed(2)}×`
  if (!r.target) return shown
  const met = r.target.op === '>=' ? r.value >= r.target.value : r.value <= r.target.value
  return `${shown} (${r.target.op === '>=' ? '≥' : '≤'} ${r.target.value} ${met ? 'met' : 'MISSED'})`
}

export function scenarioMarkdown(s: ScenarioReport): string {
  const lines = [`### (${s.id}) ${s.title}`, '']
  if (s.runs.length > 0) {
    lines.push(
      '| stack | run | req/s | p50 ms | p99 ms | errors / non-2xx | CPU µs/req | RSS |',
      '|---|---|---:|---:|---:|---:|---:|---:|',
    )
    for (const r of s.runs) {
      lines.push(
        `| ${r.stack} | ${r.run} | ${int(r.load.rps)} | ${ms(r.load.p50Ms)} | ${ms(r.load.p99Ms)} | ` +
          `${r.load.errors} / ${r.load.non2xx} | ${r.cpuUsPerRequest === undefined ? '–' : int(r.cpuUsPerRequest)} | ${mb(r.rssBytes)} |`,
      )
    }
    lines.push('')
  }
  s.ratios.forEach((ratios, i) => {
    if (ratios.length > 0)
      lines.push(`Run ${i + 1}: ${ratios.map((r) => `${r.name} ${formatRatio(r)}`).join(' · ')}`, '')
  })
  if (s.extra) lines.push(s.extra, '')
  for (const note of s.notes) lines.push(`- ${note}`)
  if (s.notes.length > 0) lines.push('')
  return lines.join('\n')
}

/** Finds the run of `stack` in round `run`. */
export function runOf(runs: CaseRun[], stack: string, run: number): CaseRun | undefined {
  return runs.find((r) => r.stack === stack && r.run === run)
}
