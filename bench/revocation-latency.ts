/**
 * How long a logout takes to reach the verifiers: the issuer, gateway and services run as separate
 * processes; each round logs a user in, lets the gateway and profile verify (and cache) the token, sends
 * the logout, and polls both verifiers until they refuse the token. The delay counts from sending the
 * logout request to the first refusal.
 *
 *   npx tsx bench/revocation-latency.ts [--rounds 200]
 */
import { parseArgs } from 'node:util'
import { Agent, request } from 'undici'
import { startProcesses } from '../test/helpers/processes.js'

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '200' } } })
const rounds = Number(values.rounds)
const POLL_INTERVAL_MS = 1
const GIVE_UP_MS = 5_000

const dispatcher = new Agent({ connections: 8 })
async function call(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
) {
  const res = await request(url, {
    dispatcher,
    method: (init.method ?? 'GET') as 'GET',
    headers: init.headers,
    body: init.body,
  })
  const text = await res.body.text()
  return { status: res.statusCode, headers: res.headers, text }
}

async function refusedAfter(url: string, token: string, since: number): Promise<number> {
  for (;;) {
    const r = await call(url, { headers: { authorization: `Bearer ${token}` } })
    const elapsed = performance.now() - since
    if (r.status === 401) return elapsed
    if (elapsed > GIVE_UP_MS) return Number.POSITIVE_INFINITY
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS))
  }
}

function quantiles(samples: number[]): string {
  const sorted = [...samples].sort((a, b) => a - b)
  const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!.toFixed(1)
  return `p50 ${q(0.5)} ms · p90 ${q(0.9)} ms · p99 ${q(0.99)} ms · max ${q(1)} ms`
}

const system = await startProcesses({
  env: { REVOCATION_FEED: 'on', LOG_LEVEL: 'warn' },
  components: ['issuer', 'gateway', 'profile'],
})
try {
  const gateway = system.urls.gateway
  const profile = system.urls.profile
  const json = { 'content-type': 'application/json' }
  const user = JSON.stringify({ email: 'latency@example.com', password: 'correct horse battery' })
  await call(`${gateway}/auth/register`, { method: 'POST', headers: json, body: user })
  const atGateway: number[] = []
  const atProfile: number[] = []
  for (let i = 0; i < rounds; i++) {
    const login = await call(`${gateway}/auth/login`, { method: 'POST', headers: json, body: user })
    const { access_token: token, csrf_token: csrf } = JSON.parse(login.text) as Record<string, string>
    const cookie = ([] as string[])
      .concat(login.headers['set-cookie'] ?? [])
      .map((c) => c.split(';')[0])
      .join('; ')
    // Verified once at each place, so each holds the token in its verified-token cache.
    await call(`${gateway}/api/profile/me`, { headers: { authorization: `Bearer ${token}` } })
    await call(`${profile}/me`, { headers: { authorization: `Bearer ${token}` } })
    const sent = performance.now()
    const logout = call(`${gateway}/auth/logout`, {
      method: 'POST',
      headers: { cookie, 'x-csrf-token': csrf! },
    })
    const [g, p] = await Promise.all([
      refusedAfter(`${gateway}/api/profile/me`, token!, sent),
      refusedAfter(`${profile}/me`, token!, sent),
      logout,
    ])
    atGateway.push(g)
    atProfile.push(p)
  }
  console.log(`revocation propagation over ${rounds} logouts (from sending the logout to the first 401):`)
  console.log(`  gateway: ${quantiles(atGateway)}`)
  console.log(`  profile (reached directly): ${quantiles(atProfile)}`)
} finally {
  await system.stop()
  await dispatcher.close()
}
