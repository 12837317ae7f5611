/**
 * How long a logout takes to reach the verifiers: the issuer, gateway and profile run as separate
 * processes (the revocation feed on); each round logs a user out and polls the gateway and the profile
 * (reached directly) until they refuse the token, each of which had verified (and cached) it before. The
 * delay counts from sending the logout to the first refusal; it is also split at the logout's own answer
 * (the issuer answers once the revocation is recorded and written to the feed), into the logout's round
 * trip through the gateway and what follows it. Idle, or (the bench's scenario `revocation`)
 * with the gateway serving `GET /api/profile/me` at a share of its measured capacity meanwhile.
 *
 *   npx tsx --conditions=keygate-source bench/revocation-latency.ts [--rounds 200]          idle
 *   npm run bench -- --scenarios revocation                    under load (issue 18)
 */
import { parseArgs } from 'node:util'
import { Agent, type Dispatcher, request } from 'undici'
import { startProcesses } from '../test/helpers/processes.js'
import { type LoadResult, type LoadTool, runLoad } from './load/index.js'
import { type Placement, pinProcess } from './machine.js'
import { quantile, quantiles } from './quantiles.js'
import type { ScenarioReport } from './report.js'
import { writeTokenFile } from './token-pool.js'

/**
 * A poll is sent this often, whether or not the ones before it were answered (at most MAX_POLLS_IN_FLIGHT
 * at once): waiting for each answer would add a loaded round trip to the delay measured whenever the
 * revocation lands while a poll is on its way through.
 */
const POLL_INTERVAL_MS = 4
const MAX_POLLS_IN_FLIGHT = 8
const GIVE_UP_MS = 5_000
/** Users of the background load (tokens reused), apart from the one logging out. */
const LOAD_USERS = 10
const PASSWORD = 'correct horse battery'
/** The load starts this long before the first logout, in milliseconds (connections open, caches warm). */
const LOAD_LEAD_MS = 1_000
/** Logouts timed by the bench scenario (full and quick). */
const FULL_ROUNDS = 200
const QUICK_ROUNDS = 20
/** The load while logging out, as a share of the measured capacity. */
const LOAD_SHARE = 0.8

export interface RevocationLoad {
  tool: LoadTool
  /** Core of the load generator (and of this process, which polls). */
  cpu: number | undefined
  /** Core of the issuer, gateway and profile (undefined: every core). */
  serverCpu: number | undefined
  connections: number
  /** Seconds to measure capacity, and the longest the loaded phase may take. */
  capacityS: number
  loadedS: number
  /** Share of the measured capacity sent while logging out (0.8). */
  share: number
}

export interface RevocationResult {
  /** Milliseconds from sending each logout to the first 401 (Infinity: never within GIVE_UP_MS). */
  atGateway: number[]
  atProfile: number[]
  /** Milliseconds from sending each logout to its answer (through the gateway). */
  logout: number[]
  /** What the gateway served at full load, and during the logouts. */
  capacity?: LoadResult
  during?: LoadResult
}

interface Session {
  token: string
  cookie: string
  csrf: string
}

/**
 * Logs a user in `rounds` times, then logs each session out in turn, timing how long the gateway and the
 * profile take to refuse its token; with `load`, while the gateway serves at `load.share` of its capacity.
 * @example
 * const r = await measureRevocation(50, { tool: 'wrk', cpu: 1, serverCpu: 0, connections: 50, capacityS: 5, loadedS: 20, share: 0.8 })
 */
export async function measureRevocation(
  rounds: number,
  load?: RevocationLoad,
  log: (line: string) => void = () => {},
): Promise<RevocationResult> {
  // Room for every poll in flight to each place, and for the logout beside them.
  const dispatcher = new Agent({ connections: MAX_POLLS_IN_FLIGHT + 2 })
  const call = async (
    url: string,
    init: { method?: string; headers?: Record<string, string>; body?: string } = {},
  ) => {
    const res = await request(url, {
      dispatcher,
      method: (init.method ?? 'GET') as 'GET',
      headers: init.headers,
      body: init.body,
    })
    const text = await res.body.text()
    return { status: res.statusCode, headers: res.headers, text }
  }
  const system = await startProcesses({
    env: {
      REVOCATION_FEED: 'on',
      LOG_LEVEL: 'warn',
      // The load comes from one address far faster than any client would.
      GATEWAY_RATE_LIMIT: '1000000000/1m',
    },
    components: ['issuer', 'gateway', 'profile'],
  })
  // Spawned by this process, they start on its core; under load they get theirs, away from the load's.
  if (load)
    for (const c of ['issuer', 'gateway', 'profile'] as const) pinProcess(system.pid(c), load.serverCpu)
  try {
    const gateway = system.urls.gateway
    const profile = system.urls.profile
    const json = { 'content-type': 'application/json' }
    const user = (name: string) => JSON.stringify({ email: `${name}@example.com`, password: PASSWORD })
    const login = async (name: string): Promise<Session> => {
      const r = await call(`${gateway}/auth/login`, { method: 'POST', headers: json, body: user(name) })
      if (r.status !== 200) throw new Error(`bench: login answered ${r.status}`)
      const { access_token: token, csrf_token: csrf } = JSON.parse(r.text) as Record<string, string>
      const cookie = ([] as string[])
        .concat(r.headers['set-cookie'] ?? [])
        .map((c) => c.split(';')[0])
        .join('; ')
      return { token: token!, cookie, csrf: csrf! }
    }
    const names = ['latency', ...(load ? Array.from({ length: LOAD_USERS }, (_, i) => `load-${i}`) : [])]
    for (const name of names) {
      await call(`${gateway}/auth/register`, { method: 'POST', headers: json, body: user(name) })
    }
    // Every session first, so the timed phase holds nothing but logouts (a login is an argon2id hash).
    const sessions: Session[] = []
    for (let i = 0; i < rounds; i++) sessions.push(await login('latency'))

    let loaded: Promise<LoadResult> | undefined
    let loadEnded = false
    let capacity: LoadResult | undefined
    if (load) {
      const tokens = await Promise.all(names.slice(1).map(async (n) => (await login(n)).token))
      const tokenFile = writeTokenFile('revocation-load.txt', tokens)
      const spec = { url: `${gateway}/api/profile/me`, connections: load.connections, tokenFile }
      capacity = await runLoad(load.tool, { ...spec, durationS: load.capacityS }, load.cpu)
      const rate = Math.max(1, Math.round(capacity.rps * load.share))
      log(`  capacity ${Math.round(capacity.rps)} req/s; logging out under ${rate} req/s`)
      loaded = runLoad('autocannon', { ...spec, durationS: load.loadedS, rate }, load.cpu)
      void loaded.finally(() => (loadEnded = true)).catch(() => {})
      await new Promise((resolve) => setTimeout(resolve, LOAD_LEAD_MS))
    }

    const atGateway: number[] = []
    const atProfile: number[] = []
    const logoutMs: number[] = []
    const logoutsStarted = performance.now()
    for (const session of sessions) {
      // Verified once at each place, so each holds the token in its verified-token cache.
      const auth = { authorization: `Bearer ${session.token}` }
      await call(`${gateway}/api/profile/me`, { headers: auth })
      await call(`${profile}/me`, { headers: auth })
      const sent = performance.now()
      const logout = call(`${gateway}/auth/logout`, {
        method: 'POST',
        headers: { cookie: session.cookie, 'x-csrf-token': session.csrf },
      }).then((r) => {
        if (r.status !== 204) throw new Error(`bench: logout answered ${r.status}`)
        return performance.now() - sent
      })
      const [g, p, answered] = await Promise.all([
        firstRefusal(dispatcher, `${gateway}/api/profile/me`, session.token, sent),
        firstRefusal(dispatcher, `${profile}/me`, session.token, sent),
        logout,
      ])
      atGateway.push(g)
      atProfile.push(p)
      logoutMs.push(answered)
    }
    log(`  ${rounds} logouts took ${((performance.now() - logoutsStarted) / 1000).toFixed(1)} s`)
    // A logout timed after the load stopped would be timed on an idle system.
    if (loadEnded) throw new Error('bench: the load ended before the last logout; lengthen the loaded phase')
    const during = loaded ? await loaded : undefined
    return {
      atGateway,
      atProfile,
      logout: logoutMs,
      ...(capacity ? { capacity } : {}),
      ...(during ? { during } : {}),
    }
  } finally {
    await system.stop()
    await dispatcher.close()
  }
}

/**
 * Polls `url` with `token` (see POLL_INTERVAL_MS) until it answers 401: milliseconds from `since` to that
 * answer, or Infinity once GIVE_UP_MS have passed.
 */
function firstRefusal(dispatcher: Dispatcher, url: string, token: string, since: number): Promise<number> {
  const headers = { authorization: `Bearer ${token}` }
  const status = async () => {
    const res = await request(url, { dispatcher, headers })
    await res.body.dump()
    return res.statusCode
  }
  return new Promise((resolve, reject) => {
    let inFlight = 0
    const settle = (done: () => void) => {
      clearInterval(timer)
      done()
    }
    const poll = () => {
      if (performance.now() - since > GIVE_UP_MS) return settle(() => resolve(Number.POSITIVE_INFINITY))
      if (inFlight >= MAX_POLLS_IN_FLIGHT) return
      inFlight++
      status().then(
        (code) => {
          inFlight--
          if (code === 401) settle(() => resolve(performance.now() - since))
        },
        (err: unknown) => settle(() => reject(err)),
      )
    }
    const timer = setInterval(poll, POLL_INTERVAL_MS)
    poll()
  })
}

/** p99 of the delay until a logout is refused, at the gateway and at a service directly, in milliseconds. */
const P99_TARGET_MS = 50

export interface RevocationScenarioOptions {
  tool: LoadTool
  machine: Placement
  connections: number
  durationS: number
  quick: boolean
  log: (line: string) => void
}

/**
 * Scenario (revocation): logouts while the gateway serves `GET /api/profile/me` at 80 % of the capacity
 * just measured. Issuer, gateway and profile share the server core, as the gateway and the profile do in
 * scenario (f); the load generator and this process's polling run on the other.
 */
export async function scenarioRevocation(options: RevocationScenarioOptions): Promise<ScenarioReport> {
  const rounds = options.quick ? QUICK_ROUNDS : FULL_ROUNDS
  const r = await measureRevocation(
    rounds,
    {
      tool: options.tool,
      cpu: options.machine.loadCpu,
      serverCpu: options.machine.serverCpu,
      connections: options.connections,
      capacityS: Math.max(2, Math.round(options.durationS / 2)),
      loadedS: Math.max(5, options.durationS),
      share: LOAD_SHARE,
    },
    options.log,
  )
  const verdict = (samples: number[]) => {
    const p99 = quantile(samples, 0.99)
    return `p99 ${p99.toFixed(1)} ms (≤ ${P99_TARGET_MS} ${p99 <= P99_TARGET_MS ? 'met' : 'MISSED'})`
  }
  const int = (n: number) => Math.round(n).toLocaleString('en-US')
  const load = (l: LoadResult | undefined) =>
    l ? `${int(l.rps)} req/s, p99 ${l.p99Ms.toFixed(1)} ms, errors ${l.errors}, non-2xx ${l.non2xx}` : '–'
  return {
    id: 'revocation',
    title: `revocation under load: ${rounds} logouts with the gateway at ${LOAD_SHARE * 100} % of its capacity`,
    runs: [],
    ratios: [],
    notes: [
      `at the gateway: ${verdict(r.atGateway)} — ${quantiles(r.atGateway)}`,
      `at the profile, reached directly: ${verdict(r.atProfile)} — ${quantiles(r.atProfile)}`,
      `the logout's own answer, through the loaded gateway: ${quantiles(r.logout)}`,
      `from the logout's answer to the first refusal (not the target, which counts from sending): at the gateway ${quantiles(afterAnswer(r, r.atGateway))}; at the profile ${quantiles(afterAnswer(r, r.atProfile))}`,
      `capacity (\`GET /api/profile/me\` through the gateway, ${options.tool}, ${options.connections} connections): ${load(r.capacity)}`,
      `during the logouts (autocannon at ${LOAD_SHARE * 100} % of it): ${load(r.during)}`,
      'issuer, gateway and profile are separate processes (the revocation feed on) sharing the server core; the load generator and the polling bench share the other',
    ],
  }
}

/** Each refusal's delay counted from its logout's answer instead of from sending the logout. */
function afterAnswer(r: RevocationResult, refused: readonly number[]): number[] {
  return refused.map((ms, i) => ms - r.logout[i]!)
}

if (process.argv[1] === import.meta.filename) {
  const { values } = parseArgs({ options: { rounds: { type: 'string', default: '200' } } })
  const rounds = Number(values.rounds)
  const r = await measureRevocation(rounds)
  console.log(`revocation propagation over ${rounds} logouts (from sending the logout to the first 401):`)
  console.log(`  gateway: ${quantiles(r.atGateway)}`)
  console.log(`  profile (reached directly): ${quantiles(r.atProfile)}`)
  console.log(`  the logout's own answer: ${quantiles(r.logout)}`)
  console.log(
    `  after the answer: gateway ${quantiles(afterAnswer(r, r.atGateway))}; profile ${quantiles(afterAnswer(r, r.atProfile))}`,
  )
}
