/**
 * Several instances as a deployment runs them: two issuer processes on one PostgreSQL database (a throwaway
 * one per run), two gateway processes sharing rate limits through Redis (a key prefix of this test's own),
 * profile behind them — with a small round-robin TCP balancer of the test's own in front of the issuers
 * (ISSUER_URL, so every verifier fetches keys and follows the revocation feed through it) and another in
 * front of the gateways (GATEWAY_URL, the `iss` of their assertions). One rate limit holds across both
 * gateways, a logout through one gateway is refused at the other, and a key rotated on one issuer signs the
 * other's tokens, accepted at both gateways. Skipped with a message without PostgreSQL or Redis, unless
 * KEYGATE_REQUIRE_POSTGRES=1 / KEYGATE_REQUIRE_REDIS=1.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { decodeProtectedHeader } from 'jose'
import t, { type Test } from 'tap'
import { defaultRouteFile } from '../../gateway/route-file.js'
import { postgresUnavailable, testDatabase } from '../helpers/postgres.js'
import { type ProcessSystem, startProcesses } from '../helpers/processes.js'
import { redisUnavailable, TEST_REDIS_URL, testKeyPrefix } from '../helpers/redis.js'
import { freePort, HttpClient } from '../helpers/system.js'

const ADMIN = { email: 'admin@example.com', password: 'admin passphrase for several instances' }
const PASSWORD = 'correct horse battery'
/** The limit of the `/api/limited` route, per subject, shared by both gateways. */
const LIMIT = 6
/** A failure guard on waiting for a condition (revocation, key reload), not a timing assertion. */
const WAIT_LIMIT_MS = 30_000

const skip = (await postgresUnavailable()) || (await redisUnavailable())

/** A round-robin TCP balancer on 127.0.0.1: each new connection goes to the next backend. */
interface Balancer {
  url: string
  backends: string[]
  /** Connections handed to each backend (by URL). */
  connections: Map<string, number>
}

async function startBalancer(t: Test): Promise<Balancer> {
  const balancer: Balancer = { url: '', backends: [], connections: new Map() }
  const sockets = new Set<Socket>()
  let next = 0
  const server: Server = createServer((client) => {
    sockets.add(client)
    client.once('close', () => sockets.delete(client))
    if (balancer.backends.length === 0) return client.destroy()
    const backend = balancer.backends[next++ % balancer.backends.length]!
    balancer.connections.set(backend, (balancer.connections.get(backend) ?? 0) + 1)
    const url = new URL(backend)
    const upstream = createConnection({ host: url.hostname, port: Number(url.port) })
    sockets.add(upstream)
    upstream.once('close', () => sockets.delete(upstream))
    client.pipe(upstream).pipe(client)
    client.once('error', () => upstream.destroy())
    upstream.once('error', () => client.destroy())
    client.once('close', () => upstream.destroy())
    upstream.once('close', () => client.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  balancer.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise((resolve) => server.close(resolve))
  })
  return balancer
}

/** Polls `check` until it holds; fails the test after WAIT_LIMIT_MS. */
async function until(t: Test, what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + WAIT_LIMIT_MS
  while (!(await check())) {
    if (Date.now() > deadline) {
      t.fail(`${what}: not seen within ${WAIT_LIMIT_MS} ms`)
      return
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.pass(what)
}

t.test('two issuers and two gateways on PostgreSQL and Redis', { skip }, async (t) => {
  const db = await testDatabase(t)
  const work = mkdtempSync(join(tmpdir(), 'kg-several-'))
  t.teardown(() => rmSync(work, { recursive: true, force: true }))
  const issuers = await startBalancer(t)
  const gateways = await startBalancer(t)

  // The built-in route table, plus one route with a small limit of its own.
  const routesFile = join(work, 'routes.json')
  const table = defaultRouteFile()
  table.routes.push({
    prefix: '/api/limited',
    upstream: 'profile',
    rewrite: '/',
    auth: { mode: 'required' },
    rateLimit: { max: LIMIT, windowMs: 3_600_000 },
  })
  writeFileSync(routesFile, JSON.stringify(table))

  const profilePort = await freePort()
  const env: Record<string, string> = {
    DATABASE_URL: db.url,
    PROFILE_DATABASE_URL: db.url,
    KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    REVOCATION_FEED_SECRET: randomBytes(24).toString('base64url'),
    REDIS_URL: TEST_REDIS_URL,
    REDIS_KEY_PREFIX: testKeyPrefix(t),
    ISSUER_URL: issuers.url,
    GATEWAY_URL: gateways.url,
    PROFILE_PORT: String(profilePort),
    PROFILE_URL: `http://127.0.0.1:${profilePort}`,
    GATEWAY_ROUTES_FILE: routesFile,
    // One assertion key for both gateways: services verify either's assertions at GATEWAY_URL.
    GATEWAY_ASSERTION_KEY_FILE: join(work, 'gateway-assertion-key.json'),
    KEYGATE_ADMIN_EMAIL: ADMIN.email,
    KEYGATE_ADMIN_PASSWORD: ADMIN.password,
    // Keys rotate as soon as the publication lead allows; verifiers refetch on an unknown kid within a second.
    KEY_PUBLISH_LEAD: '2s',
    JWKS_MAX_AGE: '1s',
    JWKS_MIN_TTL: '500ms',
    JWKS_COOLDOWN: '1s',
    // The tests poll; only /api/limited has a small limit.
    GATEWAY_RATE_LIMIT: '100000/1m',
  }

  // The first issuer alone (the key set, the admin), then two at a time. A balancer gets a backend once it
  // is ready, and the assertion key file exists (gateway A wrote it) before gateway B starts.
  const started: ProcessSystem[] = []
  t.teardown(async () => {
    for (const system of started.reverse()) await system.stop()
  })
  const start = async (component: 'issuer' | 'gateway' | 'profile', balancer?: Balancer) => {
    const system = await startProcesses({ components: [component], env })
    started.push(system)
    balancer?.backends.push(system.urls[component])
    return system.urls[component]
  }
  const issuer1 = await start('issuer', issuers)
  const [issuer2, gatewayA] = await Promise.all([start('issuer', issuers), start('gateway', gateways)])
  const [gatewayB] = await Promise.all([start('gateway', gateways), start('profile')])

  const user = { email: 'ada@example.com', password: PASSWORD }
  t.equal((await new HttpClient(gatewayA).call('POST', '/auth/register', { body: user })).status, 202)
  const login = async (base: string) => {
    const client = new HttpClient(base)
    const r = await client.call('POST', '/auth/login', { body: user })
    t.equal(r.status, 200, 'the user logs in')
    return { client, token: r.json.access_token as string, csrf: r.json.csrf_token as string }
  }
  const status = async (base: string, path: string, token: string) =>
    (await new HttpClient(base).call('GET', path, { token })).status

  t.test('one rate limit across both gateways', async (t) => {
    const { token } = await login(gatewayA)
    const answers: number[] = []
    for (let i = 0; i < LIMIT + 2; i++) {
      answers.push(await status(i % 2 === 0 ? gatewayA : gatewayB, '/api/limited/me', token))
    }
    t.same(
      answers,
      [...Array<number>(LIMIT).fill(200), 429, 429],
      `${LIMIT} requests alternating between the gateways pass, the next are refused at either`,
    )
  })

  t.test('a logout through gateway A is refused at gateway B', async (t) => {
    const session = await login(gatewayA)
    t.equal(await status(gatewayB, '/api/profile/me', session.token), 200, 'B accepts the fresh token')
    const logout = await session.client.call('POST', '/auth/logout', {
      headers: { 'x-csrf-token': session.csrf },
    })
    t.equal(logout.status, 204)
    for (const [name, base] of [
      ['B', gatewayB],
      ['A', gatewayA],
    ] as const) {
      await until(t, `gateway ${name} refuses the logged-out token`, async () => {
        const r = await new HttpClient(base).call('GET', '/api/profile/me', { token: session.token })
        return r.status === 401 && r.json.code === 'KG_TOKEN_REVOKED'
      })
    }
  })

  t.test('a key rotated on issuer 1 signs issuer 2 tokens, accepted at both gateways', async (t) => {
    const admin = new HttpClient(issuer1)
    const adminToken = (await admin.call('POST', '/auth/login', { body: ADMIN })).json.access_token as string
    t.ok(adminToken, 'the admin logs in at issuer 1')
    const before = decodeProtectedHeader(adminToken).kid
    const earlier = (await new HttpClient(issuer2).call('POST', '/auth/login', { body: user })).json
      .access_token as string
    let active: string | undefined
    await until(t, 'issuer 1 rotates once the next key has been published long enough', async () => {
      const r = await admin.call('POST', '/admin/keys/rotate', { token: adminToken })
      if (r.status === 200) {
        active = (r.json.keys as Array<{ kid: string; state: string }>).find((k) => k.state === 'active')!.kid
        return true
      }
      if (r.json.code === 'KG_KEY_ROTATION_TOO_EARLY') return false
      t.fail(`rotation answered ${r.status} ${r.text.slice(0, 200)}`)
      return true
    })
    t.not(active, before, 'a new key is active')

    let token = ''
    await until(t, 'issuer 2 signs with the key rotated on issuer 1', async () => {
      const r = await new HttpClient(issuer2).call('POST', '/auth/login', { body: user })
      token = r.json.access_token as string
      return r.status === 200 && decodeProtectedHeader(token).kid === active
    })
    t.equal(await status(gatewayA, '/api/profile/me', token), 200, 'gateway A accepts it')
    t.equal(await status(gatewayB, '/api/profile/me', token), 200, 'gateway B accepts it')
    for (const [name, base] of [
      ['A', gatewayA],
      ['B', gatewayB],
    ] as const) {
      t.equal(
        await status(base, '/api/profile/me', earlier),
        200,
        `gateway ${name} still accepts the old key's token`,
      )
    }
  })

  t.test('the issuer balancer spread connections over both issuers', async (t) => {
    t.same([...issuers.connections.keys()].sort(), [issuer1, issuer2].sort())
    t.ok(
      [...issuers.connections.values()].every((n) => n > 0),
      `connections per issuer: ${[...issuers.connections.values()].join(', ')}`,
    )
  })
})
