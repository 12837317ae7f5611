/**
 * Scenario (e), the issuer (the real `keygate start issuer`, SQLite, default settings, pinned to the server
 * core): logins per second, bounded by argon2id at OWASP's parameters, and refreshes per second, each one a
 * refresh-token rotation in the store and an RS256 signature, against the raw RSA-2048 signing rate of the
 * same core (node:crypto.sign, synchronous), and WebCrypto's (what jose's SignJWT uses).
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { constants, generateKeyPairSync, sign, webcrypto } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { cpuMicros, type Placement, pinned } from './machine.js'
import { freePort, startServer } from './processes.js'
import type { ScenarioReport } from './report.js'

/** Concurrent logins while measuring the login rate (argon2 runs on libuv's 4 threads). */
const LOGIN_CONCURRENCY = 4
/** Sessions refreshing concurrently. */
const REFRESH_SESSIONS = 50
/** Measuring time of each rate, in milliseconds (full and quick). */
const MEASURE_MS = 8_000
const QUICK_MEASURE_MS = 2_000
/**
 * Refreshing before the refresh rate is measured, in milliseconds: long enough that V8 has compiled the
 * refresh path (one refresh per session left its compilation inside the measured window; a CPU profile
 * showed 13 % of the issuer's CPU there compiling).
 */
const REFRESH_WARM_UP_MS = 2_000
const PASSWORD = 'correct horse battery staple'

export interface IssuerBenchOptions {
  machine: Placement
  quick: boolean
  log: (line: string) => void
  /** Write a V8 CPU profile of the issuer here on exit. */
  cpuProfileDir?: string
}

interface SignRates {
  /** node:crypto.sign, RSA-2048 PKCS#1 v1.5 SHA-256, one at a time, per CPU-second. */
  syncOps: number
  /** WebCrypto RSASSA-PKCS1-v1_5 sign, 4 in flight (it runs on libuv's thread pool). */
  webCryptoOps: number
}

/** Calls `fn` from `concurrency` loops until `ms` have passed; successes and failures per second. */
async function rate(
  ms: number,
  concurrency: number,
  fn: (loop: number) => Promise<boolean>,
): Promise<{ perSecond: number; failures: number; total: number }> {
  const deadline = performance.now() + ms
  const start = performance.now()
  let ok = 0
  let failures = 0
  await Promise.all(
    Array.from({ length: concurrency }, async (_, loop) => {
      while (performance.now() < deadline) {
        if (await fn(loop)) ok++
        else failures++
      }
    }),
  )
  return { perSecond: (ok / (performance.now() - start)) * 1000, failures, total: ok }
}

function cookieValue(setCookie: string | string[] | undefined, name: string): string | undefined {
  for (const c of Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : []) {
    if (c.startsWith(`${name}=`)) return c.slice(name.length + 1).split(';')[0]
  }
  return undefined
}

/** Measures the issuer; the report of scenario (e). */
export async function issuerScenario(options: IssuerBenchOptions): Promise<ScenarioReport> {
  const ms = options.quick ? QUICK_MEASURE_MS : MEASURE_MS
  const signRates = await rawSignRates(options.machine.serverCpu, ms / 2)
  const work = mkdtempSync(join(tmpdir(), 'kg-bench-issuer-'))
  const port = await freePort()
  const issuer = await startServer({
    name: 'issuer',
    script: 'bin/keygate.ts',
    args: ['start', 'issuer'],
    env: {
      HOST: '127.0.0.1',
      ISSUER_PORT: String(port),
      ISSUER_OPS_PORT: '0',
      DATA_DIR: join(work, 'data'),
      KEYS_DIR: join(work, 'keys'),
      // The bench logs in from one address far more often than a person would.
      LOGIN_MAX_FAILURES_PER_ADDRESS: '100000',
      LOGIN_MAX_FAILURES_PER_ACCOUNT: '100000',
    },
    cpu: options.machine.serverCpu,
    ...(options.cpuProfileDir
      ? { nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfileDir}`] }
      : {}),
  })
  const dispatcher = new Agent({ connections: REFRESH_SESSIONS + LOGIN_CONCURRENCY })
  const post = (path: string, body?: unknown, headers: Record<string, string> = {}) =>
    request(`${issuer.url}${path}`, {
      method: 'POST',
      dispatcher,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
  try {
    const email = (i: number) => `bench-${i}@example.com`
    for (let i = 0; i < LOGIN_CONCURRENCY; i++) {
      const res = await post('/auth/register', { email: email(i), password: PASSWORD })
      await res.body.dump()
      if (res.statusCode !== 202) throw new Error(`bench: registering answered ${res.statusCode}`)
    }
    const login = async (loop: number) => {
      const res = await post('/auth/login', { email: email(loop % LOGIN_CONCURRENCY), password: PASSWORD })
      const body = (await res.body.json()) as { csrf_token?: string }
      return res.statusCode === 200
        ? { refresh: cookieValue(res.headers['set-cookie'], 'kg_refresh')!, csrf: body.csrf_token! }
        : undefined
    }
    options.log('  issuer: logins')
    const cpuBeforeLogins = cpuMicros(issuer.pid)
    const logins = await rate(ms, LOGIN_CONCURRENCY, async (loop) => (await login(loop)) !== undefined)
    const loginCpuUs = (cpuMicros(issuer.pid) - cpuBeforeLogins) / Math.max(1, logins.total)

    const sessions: Array<{ refresh: string; csrf: string }> = []
    while (sessions.length < REFRESH_SESSIONS) {
      const got = await Promise.all(Array.from({ length: LOGIN_CONCURRENCY }, (_, i) => login(i)))
      for (const s of got) if (s && sessions.length < REFRESH_SESSIONS) sessions.push(s)
    }
    const refresh = async (loop: number) => {
      const session = sessions[loop]!
      const res = await post('/auth/refresh', undefined, {
        cookie: `kg_refresh=${session.refresh}`,
        'x-csrf-token': session.csrf,
      })
      const body = (await res.body.json()) as { csrf_token?: string }
      if (res.statusCode !== 200) return false
      session.refresh = cookieValue(res.headers['set-cookie'], 'kg_refresh')!
      session.csrf = body.csrf_token!
      return true
    }
    options.log('  issuer: refreshes')
    const warmUp = await rate(
      options.quick ? REFRESH_WARM_UP_MS / 4 : REFRESH_WARM_UP_MS,
      REFRESH_SESSIONS,
      refresh,
    )
    if (warmUp.failures > 0) throw new Error(`bench: ${warmUp.failures} refreshes failed while warming up`)
    const cpuBeforeRefreshes = cpuMicros(issuer.pid)
    const refreshes = await rate(ms, REFRESH_SESSIONS, refresh)
    const refreshCpuUs = (cpuMicros(issuer.pid) - cpuBeforeRefreshes) / Math.max(1, refreshes.total)

    // Both per CPU-second of the one core: what the issuer could do with the core to itself.
    const refreshesPerCpuSecond = 1e6 / refreshCpuUs
    const vsRaw = refreshesPerCpuSecond / signRates.syncOps
    const int = (n: number) => Math.round(n).toLocaleString('en-US')
    return {
      id: 'e',
      title: 'the issuer: logins and refreshes per second',
      runs: [],
      ratios: [],
      notes: [
        `refreshes ÷ raw RSA-2048 signing rate, both per CPU-second of the core: ${int(refreshesPerCpuSecond)} ÷ ` +
          `${int(signRates.syncOps)} = ${vsRaw.toFixed(2)}× (target ≥ 0.6: ${vsRaw >= 0.6 ? 'met' : 'MISSED'}); ` +
          `by the clock ${int(refreshes.perSecond)}/s`,
        `logins are bounded by argon2id (19 MiB, 2 passes, 1 lane): ${int(logins.perSecond)}/s on one core, ` +
          `${int(loginCpuUs / 1000)} ms of CPU each`,
      ],
      extra: [
        '| measure (issuer pinned to one core) | per second | CPU per operation | failures |',
        '|---|---:|---:|---:|',
        `| logins (${LOGIN_CONCURRENCY} concurrent) | ${int(logins.perSecond)} | ${(loginCpuUs / 1000).toFixed(1)} ms | ${logins.failures} |`,
        `| refreshes (${REFRESH_SESSIONS} sessions concurrently) | ${int(refreshes.perSecond)} | ${(refreshCpuUs / 1000).toFixed(2)} ms | ${refreshes.failures} |`,
        `| raw RSA-2048 sign, node:crypto.sign, one at a time (per CPU-second) | ${int(signRates.syncOps)} | ${(1000 / signRates.syncOps).toFixed(2)} ms | – |`,
        `| raw RSA-2048 sign, WebCrypto (the issuer's path), 4 in flight | ${int(signRates.webCryptoOps)} | – | – |`,
      ].join('\n'),
    }
  } finally {
    await dispatcher.close()
    await issuer.stop()
  }
}

/** The raw signing rates, measured in a child process on `cpu`. */
async function rawSignRates(cpu: number | undefined, ms: number): Promise<SignRates> {
  const [command, ...args] = pinned(cpu, [
    process.execPath,
    '--conditions=keygate-source',
    '--import',
    'tsx',
    join(import.meta.dirname, 'issuer-bench.ts'),
    'sign-rate',
    String(ms),
  ])
  const child = spawn(command!, args, { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout!.on('data', (d: Buffer) => (out += d))
  const [code] = (await once(child, 'exit')) as [number | null]
  if (code !== 0) throw new Error(`bench: measuring the signing rate failed (exit code ${code})`)
  return JSON.parse(out.trim()) as SignRates
}

async function measureSignRates(ms: number): Promise<SignRates> {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const data = Buffer.from('eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJiZW5jaCJ9')
  for (let i = 0; i < 20; i++) sign('sha256', data, { key: privateKey, padding: constants.RSA_PKCS1_PADDING })
  // Per CPU-second: on a shared machine, wall time would count other processes' turns on this core.
  let n = 0
  let start = performance.now()
  const cpu = process.cpuUsage()
  while (performance.now() - start < ms) {
    sign('sha256', data, privateKey)
    n++
  }
  const used = process.cpuUsage(cpu)
  const syncOps = (n / (used.user + used.system)) * 1e6
  const pair = await webcrypto.subtle.generateKey(
    {
      name: 'RSASSA-PKCS1-v1_5',
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: 'SHA-256',
    },
    false,
    ['sign', 'verify'],
  )
  const webSign = () => webcrypto.subtle.sign('RSASSA-PKCS1-v1_5', pair.privateKey, data)
  n = 0
  start = performance.now()
  const deadline = start + ms
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (performance.now() < deadline) {
        await webSign()
        n++
      }
    }),
  )
  return { syncOps, webCryptoOps: (n / (performance.now() - start)) * 1000 }
}

if (process.argv[1] === import.meta.filename && process.argv[2] === 'sign-rate') {
  console.log(JSON.stringify(await measureSignRates(Number(process.argv[3]))))
}
