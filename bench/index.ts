/**
 * keygate's benchmark against the alternatives (issues 6 and 18): one upstream, and in turn the upstream
 * alone, a bare Fastify + @fastify/reply-from proxy, HAProxy with jwt_verify, keygate's gateway on an
 * authenticated route, and the Express stack, all trusting one issuer's tokens, under the same load, pinned
 * to cores where taskset exists; then the gateway in front of keygate's profile service, revocation under
 * load, and the issuer.
 *
 *   npm run bench                                  every scenario (about 10 minutes)
 *   npm run bench -- --quick                       short runs, a small token pool (about 2 minutes)
 *   npm run bench -- --scenarios a,b,micro         some of: a b c d f revocation e micro workers
 *   npm run bench -- --duration 10 --connections 50 --runs 2 --tool wrk|autocannon --profile --no-pin --no-memory
 *   npm run bench -- --markdown docs/bench-latest.md   also write the report to a file
 *
 * Figures on a shared machine swing; the ratios within one run are what count.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { startBenchIssuer } from './bench-issuer.js'
import { issuerScenario } from './issuer-bench.js'
import { chooseLoadTool, type LoadTool } from './load/index.js'
import { pinSelf, placement } from './machine.js'
import { profileSummary } from './profile-summary.js'
import { scenarioMarkdown, type ScenarioReport } from './report.js'
import type { BenchContext } from './rounds.js'
import { haproxyAvailable } from './haproxy.js'
import { scenarioRevocation } from './revocation-latency.js'
import {
  fewUsersTokens,
  scenarioA,
  scenarioB,
  scenarioC,
  scenarioD,
  scenarioProfile,
  scenarioWorkers,
} from './scenarios.js'
import { startUpstream } from './stacks.js'
import { CACHE_DIR, tokenPool } from './token-pool.js'
import { verifyMicroBenchmark } from './verify-micro.js'

const SCENARIOS = ['a', 'b', 'c', 'd', 'f', 'revocation', 'e', 'micro', 'workers'] as const
type Scenario = (typeof SCENARIOS)[number]

/**
 * Distinct tokens of scenario (b), full and quick: enough that no gateway load meets a token twice (a warm-up
 * and two 10 s runs at up to ~10,000 verifications per second), and 100,000 for the memory passes.
 */
const FULL_POOL = 250_000
const QUICK_POOL = 5_000

export interface BenchOptions {
  scenarios: Scenario[]
  quick: boolean
  connections: number
  durationS: number
  warmupS: number
  runs: number
  tool?: LoadTool
  pin: boolean
  profile: boolean
  poolSize: number
  /** Scenario (b)'s memory passes (three times 100,000 tokens through a fresh gateway); off with --quick. */
  memory?: boolean
}

function parseOptions(argv: string[]): BenchOptions & { markdown?: string } {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      quick: { type: 'boolean', default: false },
      scenarios: { type: 'string' },
      connections: { type: 'string', default: '50' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      runs: { type: 'string' },
      tool: { type: 'string' },
      'no-pin': { type: 'boolean', default: false },
      'no-memory': { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      pool: { type: 'string' },
      markdown: { type: 'string' },
    },
  })
  const scenarios = (values.scenarios ?? SCENARIOS.join(',')).split(',').map((s) => s.trim())
  for (const s of scenarios) {
    if (!(SCENARIOS as readonly string[]).includes(s)) {
      throw new Error(`bench: unknown scenario "${s}" (known: ${SCENARIOS.join(', ')})`)
    }
  }
  if (values.tool !== undefined && values.tool !== 'wrk' && values.tool !== 'autocannon') {
    throw new Error('bench: --tool is wrk or autocannon')
  }
  const quick = values.quick
  const number = (value: string | undefined, fallback: number, name: string) => {
    const n = value === undefined ? fallback : Number(value)
    if (!Number.isFinite(n) || n < 0) throw new Error(`bench: --${name} must be a number`)
    return n
  }
  return {
    scenarios: scenarios as Scenario[],
    quick,
    connections: number(values.connections, 50, 'connections'),
    durationS: number(values.duration, quick ? 3 : 10, 'duration'),
    warmupS: number(values.warmup, quick ? 1 : 3, 'warmup'),
    runs: number(values.runs, 2, 'runs'),
    ...(values.tool ? { tool: values.tool as LoadTool } : {}),
    pin: !values['no-pin'],
    memory: !values['no-memory'],
    profile: values.profile,
    poolSize: number(values.pool, quick ? QUICK_POOL : FULL_POOL, 'pool'),
    ...(values.markdown ? { markdown: values.markdown } : {}),
  }
}

/**
 * Runs the bench and returns its markdown report.
 * @example
 * const report = await runBench({ ...options, scenarios: ['a'] })
 */
export async function runBench(
  options: BenchOptions,
  log = (line: string) => console.error(line),
): Promise<string> {
  const started = Date.now()
  const machine = placement(options.pin)
  pinSelf(machine.loadCpu)
  const { tool, note: toolNote } = chooseLoadTool(options.tool)
  const wants = (s: Scenario) => options.scenarios.includes(s)
  const proxyScenarios = (['a', 'b', 'c', 'd', 'f', 'workers'] as const).some(wants)

  log(`bench: ${tool}, ${options.connections} connections, ${options.durationS} s runs × ${options.runs}`)
  const needsPool = wants('b') || wants('micro') || proxyScenarios
  const pool = needsPool
    ? await (async () => {
        log(`bench: token pool of ${options.poolSize} (minted on first use, then cached in bench/.cache)`)
        return tokenPool(options.poolSize)
      })()
    : undefined

  const reports: ScenarioReport[] = []
  const profileDir = options.profile ? join(CACHE_DIR, `profiles-${started}`) : undefined
  if (profileDir) mkdirSync(profileDir, { recursive: true })

  if (proxyScenarios && pool) {
    const issuer = await startBenchIssuer([pool.key])
    // The upstream on the load generator's core, as issue 18's figures were taken: the proxy has its core.
    const upstream = await startUpstream(machine.loadCpu)
    const haproxy =
      wants('a') || wants('b') ? haproxyAvailable(log) : { ok: false as const, why: 'not needed' }
    const ctx: BenchContext = {
      machine,
      tool,
      connections: options.connections,
      durationS: options.durationS,
      warmupS: options.warmupS,
      runs: options.runs,
      issuer,
      pool,
      fewUsersFile: fewUsersTokens(pool.key),
      upstream,
      profileDir,
      haproxy,
      log,
    }
    try {
      if (wants('a')) {
        log('bench: scenario (a)')
        reports.push(await scenarioA(ctx))
      }
      if (wants('b')) {
        log('bench: scenario (b)')
        reports.push(await scenarioB(ctx, !options.quick && options.memory !== false))
      }
      if (wants('c')) {
        log('bench: scenario (c)')
        reports.push(await scenarioC(ctx))
      }
      if (wants('d')) {
        log('bench: scenario (d)')
        reports.push(await scenarioD(ctx))
      }
      if (wants('f')) {
        log('bench: scenario (f), gateway → profile')
        reports.push(await scenarioProfile(ctx))
      }
      if (wants('workers')) {
        log('bench: gateway processes 1 → 2')
        reports.push(await scenarioWorkers(ctx))
      }
    } finally {
      await upstream.stop()
      await issuer.close()
    }
  }
  if (wants('revocation')) {
    log('bench: revocation under load')
    reports.push(
      await scenarioRevocation({
        tool,
        machine,
        connections: options.connections,
        durationS: options.durationS,
        quick: options.quick,
        log,
      }),
    )
  }
  if (wants('micro') && pool) {
    log('bench: verify micro-benchmark')
    reports.push(await verifyMicroBenchmark(pool, machine.serverCpu, options.quick))
  }
  if (wants('e')) {
    log('bench: scenario (e), the issuer')
    reports.push(
      await issuerScenario({
        machine,
        quick: options.quick,
        log,
        ...(profileDir ? { cpuProfileDir: join(profileDir, 'issuer') } : {}),
      }),
    )
  }

  const header = [
    `## keygate bench — ${new Date(started).toISOString().slice(0, 16).replace('T', ' ')} UTC`,
    '',
    `- machine: ${machine.cores} cores (${machine.cpuModel}), Node ${process.version}, ${process.platform}`,
    `- pinning: ${
      machine.pinning
        ? `taskset — the stack under test on CPU ${machine.serverCpu}, the bench upstream and the load generator on CPU ${machine.loadCpu}`
        : 'none (no taskset, one core, or --no-pin)'
    }`,
    `- load: ${toolNote}, ${options.connections} connections, ${options.durationS} s per run after ${options.warmupS} s warm-up, ${options.runs} runs per stack in rounds`,
    `- command: \`npm run bench --${options.quick ? ' --quick' : ''}${options.memory === false ? ' --no-memory' : ''} --scenarios ${options.scenarios.join(',')}\`; took ${Math.round((Date.now() - started) / 1000)} s`,
    "- CPU µs/req: CPU time of the stack's own process(es) per request (the upstream and the load generator run apart)",
    '',
  ]
  let markdown = [...header, ...reports.map(scenarioMarkdown)].join('\n')
  if (profileDir)
    markdown += `\n### CPU profiles (gateway per scenario, issuer)\n\n${profileSummary(profileDir)}\n`
  return markdown
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2))
  const markdown = await runBench(options)
  console.log(markdown)
  if (options.markdown) writeFileSync(options.markdown, `${markdown}\n`)
}

if (process.argv[1] === import.meta.filename) await main()
