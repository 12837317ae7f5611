/**
 * How a scenario measures: the context every scenario runs in, one load or one measured run of a stack (req/s,
 * latency, the stack's CPU per request, its RSS), stacks warmed up and then loaded in rounds, and the ratios
 * the report prints.
 */
import type { BenchIssuer } from './bench-issuer.js'
import { type LoadResult, type LoadSpec, type LoadTool, runLoad } from './load/index.js'
import { cpuMicros, type Placement, rssBytes } from './machine.js'
import type { ServerProcess } from './processes.js'
import type { CaseRun, Ratio } from './report.js'
import type { TokenPool } from './token-pool.js'

export interface BenchContext {
  machine: Placement
  tool: LoadTool
  connections: number
  durationS: number
  warmupS: number
  runs: number
  issuer: BenchIssuer
  pool: TokenPool
  /** FEW_USERS tokens, one a line. */
  fewUsersFile: string
  upstream: ServerProcess
  /** Where gateway CPU profiles go (`--profile`), if anywhere. */
  profileDir: string | undefined
  /** Whether HAProxy with jwt_verify can run here, and why not. */
  haproxy: { ok: true } | { ok: false; why: string }
  log: (line: string) => void
}

export type Spec = Omit<LoadSpec, 'url' | 'connections' | 'durationS'> & { durationS?: number }

export async function load(
  ctx: BenchContext,
  server: ServerProcess,
  path: string,
  spec: Spec,
): Promise<LoadResult> {
  return runLoad(
    ctx.tool,
    { url: `${server.url}${path}`, connections: ctx.connections, durationS: ctx.durationS, ...spec },
    ctx.machine.loadCpu,
  )
}

/** One measured run, with the stack's CPU time per request and its RSS afterwards. */
export async function measure(
  ctx: BenchContext,
  server: ServerProcess,
  stack: string,
  run: number,
  path: string,
  spec: Spec,
  alsoCounted: ServerProcess[] = [],
): Promise<CaseRun> {
  const counted = [server, ...alsoCounted]
  const cpuNow = () => counted.reduce((sum, s) => sum + cpuMicros(s.pid), 0)
  const before = cpuNow()
  const result = await load(ctx, server, path, spec)
  const cpu = cpuNow() - before
  const entry: CaseRun = {
    stack,
    run,
    load: result,
    cpuUsPerRequest: cpu > 0 && result.requests > 0 ? cpu / result.requests : undefined,
    rssBytes: counted.reduce((sum, s) => sum + rssBytes(s.pid), 0) || undefined,
  }
  ctx.log(
    `  ${stack.padEnd(28)} run ${run}: ${Math.round(result.rps)} req/s, p99 ${result.p99Ms.toFixed(2)} ms, ` +
      `errors ${result.errors}, non-2xx ${result.non2xx}`,
  )
  return entry
}

export const ratio = (
  name: string,
  a: CaseRun | undefined,
  b: CaseRun | undefined,
  target?: Ratio['target'],
) => (a && b ? [{ name, value: a.load.rps / b.load.rps, ...(target ? { target } : {}) }] : [])

export const p99Ratio = (
  name: string,
  a: CaseRun | undefined,
  b: CaseRun | undefined,
  target?: Ratio['target'],
) => (a && b ? [{ name, value: a.load.p99Ms / b.load.p99Ms, ...(target ? { target } : {}) }] : [])

export interface Stack {
  name: string
  server: ServerProcess
  path: string
  /** The load of run `run` (0: warm-up). */
  spec: (run: number) => Spec
  /** Other processes the stack's CPU time and memory include (a service behind the gateway). */
  alsoCounted?: ServerProcess[]
}

/** Warms every stack, then measures them in rounds. */
export async function rounds(ctx: BenchContext, stacks: Stack[]): Promise<CaseRun[]> {
  if (ctx.warmupS > 0) {
    for (const s of stacks) await load(ctx, s.server, s.path, { ...s.spec(0), durationS: ctx.warmupS })
  }
  const runs: CaseRun[] = []
  for (let run = 1; run <= ctx.runs; run++) {
    for (const s of stacks)
      runs.push(await measure(ctx, s.server, s.name, run, s.path, s.spec(run), s.alsoCounted))
  }
  return runs
}

export async function stopAll(servers: ServerProcess[]): Promise<void> {
  await Promise.all(servers.map((s) => s.stop()))
}
