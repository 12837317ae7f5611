/**
 * The load generators: wrk (Debian's package; installed with apt-get when missing and running as root) or,
 * failing that, autocannon (a dev dependency). Both rotate `Authorization` headers over a token file, both
 * run in their own process pinned to the load core, and both report the same figures.
 */
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { aptInstall, onPath, pinned } from '../machine.js'

export type LoadTool = 'wrk' | 'autocannon'

const LUA_SCRIPT = join(import.meta.dirname, 'tokens.lua')
const AUTOCANNON_RUNNER = join(import.meta.dirname, 'autocannon-runner.ts')
/** Time a request may take before the load generator counts it as an error, in seconds. */
const REQUEST_TIMEOUT_S = 10
/** Output of a load run that may be kept, in bytes. */
const MAX_OUTPUT_BYTES = 16 * 1024 * 1024

export interface LoadSpec {
  url: string
  connections: number
  durationS: number
  /** Send exactly this many requests instead of running for `durationS` (autocannon only). */
  amount?: number
  /** Send at most this many requests per second in all (autocannon only: wrk has no rate). */
  rate?: number
  /** One token a line (or `<phase> <token>` with `phaseS`); absent: no Authorization header. */
  tokenFile?: string
  /** First line of the file to use, and how many from there (0: to the end). */
  offset?: number
  span?: number
  /** Move to the next phase's tokens every this many seconds (scenario c). */
  phaseS?: number
}

/** What autocannon-runner.ts is given. */
export interface AutocannonSettings {
  url: string
  connections: number
  durationS: number
  amount: number
  /** Requests per second in all; 0: as fast as it can. */
  rate: number
  tokenFile: string
  offset: number
  span: number
  phaseS: number
}

export interface LoadResult {
  requests: number
  durationS: number
  /** Requests per second over the run. */
  rps: number
  p50Ms: number
  p99Ms: number
  /** Socket errors and timeouts. */
  errors: number
  /** Responses with a status outside 2xx (wrk counts 4xx and 5xx). */
  non2xx: number
}

/**
 * The tool to use, and a note saying where it came from. `prefer` forces one; otherwise wrk when present
 * (installed through apt-get when missing and this is root), else autocannon.
 */
export function chooseLoadTool(prefer?: LoadTool): { tool: LoadTool; note: string } {
  if (prefer === 'autocannon') return { tool: 'autocannon', note: 'autocannon (asked for)' }
  if (onPath('wrk')) return { tool: 'wrk', note: 'wrk (found on PATH)' }
  if (aptInstall('wrk', (line) => console.error(line)))
    return { tool: 'wrk', note: 'wrk (installed by the bench with apt-get)' }
  if (prefer === 'wrk') throw new Error('bench: wrk was asked for and cannot be found or installed')
  return { tool: 'autocannon', note: 'autocannon (wrk not available)' }
}

/** Runs one load, pinned to `cpu` when given. */
export async function runLoad(tool: LoadTool, spec: LoadSpec, cpu: number | undefined): Promise<LoadResult> {
  if (tool === 'wrk' && spec.amount === undefined && spec.rate === undefined) return runWrk(spec, cpu)
  return runAutocannon(spec, cpu)
}

async function runWrk(spec: LoadSpec, cpu: number | undefined): Promise<LoadResult> {
  const args = [
    '-t1',
    `-c${spec.connections}`,
    `-d${spec.durationS}s`,
    `--timeout`,
    `${REQUEST_TIMEOUT_S}s`,
    '-s',
    LUA_SCRIPT,
    spec.url,
    '--',
    spec.tokenFile ?? '',
    String(spec.offset ?? 0),
    String(spec.span ?? 0),
    String(spec.phaseS ?? 0),
  ]
  const [command, ...rest] = pinned(cpu, ['wrk', ...args])
  const { stdout } = await promisify(execFile)(command!, rest, { maxBuffer: MAX_OUTPUT_BYTES })
  const line = stdout.split('\n').find((l) => l.startsWith('BENCH_JSON '))
  if (!line) throw new Error(`bench: wrk printed no result:\n${stdout}`)
  const r = JSON.parse(line.slice('BENCH_JSON '.length)) as Record<string, number>
  const durationS = r.duration_us! / 1e6
  return {
    requests: r.requests!,
    durationS,
    rps: r.requests! / durationS,
    p50Ms: r.p50_us! / 1000,
    p99Ms: r.p99_us! / 1000,
    errors: r.connect! + r.read! + r.write! + r.timeout!,
    non2xx: r.status!,
  }
}

async function runAutocannon(spec: LoadSpec, cpu: number | undefined): Promise<LoadResult> {
  const settings: AutocannonSettings = {
    url: spec.url,
    connections: spec.connections,
    durationS: spec.durationS,
    amount: spec.amount ?? 0,
    rate: spec.rate ?? 0,
    tokenFile: spec.tokenFile ?? '',
    offset: spec.offset ?? 0,
    span: spec.span ?? 0,
    phaseS: spec.phaseS ?? 0,
  }
  const [command, ...rest] = pinned(cpu, [
    process.execPath,
    '--conditions=keygate-source',
    '--import',
    'tsx',
    AUTOCANNON_RUNNER,
    JSON.stringify(settings),
  ])
  const { stdout } = await promisify(execFile)(command!, rest, { maxBuffer: MAX_OUTPUT_BYTES })
  const r = JSON.parse(stdout.trim().split('\n').at(-1)!) as Omit<LoadResult, 'rps'>
  return { ...r, rps: r.requests / r.durationS }
}
