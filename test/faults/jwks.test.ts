/**
 * The issuer's JWKS failing while the gateway runs: down (connections refused), slow (no answer, or a body
 * that stalls), answering garbage (not JSON, the wrong shape, too big, no usable key) or redirecting (to the
 * attacker's server, which must see nothing). With short JWKS settings, the gateway keeps verifying with the
 * keys it holds until JWKS_MAX_STALE past their cache lifetime, then refuses clearly (503 KG_KEYS_STALE,
 * Retry-After, /readyz 503), and recovers by itself once the issuer answers again.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyReply } from 'fastify'
import t, { type Test } from 'tap'
import { buildGateway } from '../../gateway/app.js'
import { loadGatewayConfig } from '../../gateway/config.js'
import { createLogger } from '../../lib/server.js'
import { startEchoUpstream } from '../gateway/helpers/servers.js'
import { startAttacker } from '../helpers/attacker.js'
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js'
import { rawRequest } from '../helpers/raw-http.js'
import { startTokenIssuer, type TokenIssuer } from '../helpers/token-issuer.js'

/** Keys are fresh for TTL_S after a fetch, then usable for MAX_STALE_S more while refetches fail. */
const TTL_S = 1
const MAX_STALE_S = 3
const JWKS_ENV = {
  JWKS_MIN_TTL: `${TTL_S}s`,
  JWKS_DEFAULT_TTL: `${TTL_S}s`,
  JWKS_MAX_STALE: `${MAX_STALE_S}s`,
  JWKS_TIMEOUT: '500ms',
  // Retries after a failed fetch back off from 1 s up to the cooldown: short, so every garbage kind is served.
  JWKS_COOLDOWN: '250ms',
}
/** Generous bounds: the refusal must come, and recovery must happen, well within these. */
const REFUSAL_DEADLINE_MS = (TTL_S + MAX_STALE_S) * 1000 + 8_000
const RECOVERY_DEADLINE_MS = 15_000

interface Outage {
  issuer: TokenIssuer
  proxy: FaultProxy
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function until(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) return false
    await sleep(10)
  }
  return true
}

/**
 * Runs one outage: a gateway on short JWKS settings whose JWKS goes through a fault proxy; `breakIt` right
 * after a successful fetch, watch it serve then refuse, `repair`, watch it recover.
 */
async function outage(
  t: Test,
  kind: string,
  breakIt: (o: Outage) => Promise<void>,
  repair: (o: Outage) => Promise<void>,
) {
  const issuer = await startTokenIssuer()
  t.teardown(() => issuer.close())
  issuer.maxAge = TTL_S
  const proxy = await startFaultProxy(issuer.url)
  t.teardown(() => proxy.close())
  const echo = await startEchoUpstream(t)
  // A directory of its own: four outages run at once under one test, and t.testdir() would be shared.
  const keysDir = mkdtempSync(join(tmpdir(), 'kg-jwks-fault-'))
  t.teardown(() => rmSync(keysDir, { recursive: true, force: true }))
  const config = loadGatewayConfig({
    KEYS_DIR: keysDir,
    LOG_LEVEL: 'silent',
    ISSUER_URL: issuer.url,
    REVOCATION_FEED: 'off',
    TRUSTED_ISSUERS: JSON.stringify([
      { issuer: issuer.url, jwksUri: `${proxy.url}/.well-known/jwks.json`, audiences: [issuer.audience] },
    ]),
    ...JWKS_ENV,
  })
  const app = await buildGateway({
    config,
    logger: createLogger({ name: 'gateway', level: 'silent' }),
    routes: {
      upstreams: { echo: echo.url },
      routes: [{ prefix: '/api', upstream: 'echo', auth: { mode: 'required' } }],
    },
  })
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port: 0 })
  await app.auth.ready()
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const call = async (token: string) => {
    const r = await rawRequest(url, { target: '/api/x', headers: [['authorization', `Bearer ${token}`]] })
    return {
      status: r.status,
      code: r.json?.code as string | undefined,
      retryAfter: r.headers['retry-after'],
    }
  }
  const cached = await issuer.mint()
  t.equal((await call(cached)).status, 200, `${kind}: a token verifies before the outage`)

  // Break right after a successful background fetch, so the keys have their whole lifetime ahead.
  const fetched = issuer.jwksRequests
  t.ok(
    await until(() => issuer.jwksRequests > fetched, 5_000),
    `${kind}: the keys were refreshed in the background`,
  )
  await sleep(20)
  const o = { issuer, proxy }
  const requestsBefore = issuer.jwksRequests
  const brokeAt = Date.now()
  await breakIt(o)

  // Served from the cache (both a token verified before and fresh ones), then a clear refusal.
  const served: string[] = []
  let refusal: Awaited<ReturnType<typeof call>> | undefined
  let refusedAt = 0
  while (!refusal && Date.now() - brokeAt < REFUSAL_DEADLINE_MS) {
    for (const token of [cached, await issuer.mint()]) {
      const r = await call(token)
      if (r.status === 200) continue
      if (!refusal) {
        refusal = r
        refusedAt = Date.now()
      }
      if (r.status !== 503) served.push(`${r.status} ${r.code}`)
    }
    await sleep(50)
  }
  const servedMs = refusedAt - brokeAt
  t.strictSame(served, [], `${kind}: nothing but 200 until the refusal, and 503 after it`)
  t.ok(refusal, `${kind}: the gateway refused once the keys were too stale`)
  t.equal(refusal?.code, 'KG_KEYS_STALE', `${kind}: with KG_KEYS_STALE`)
  t.ok(refusal?.retryAfter, `${kind}: and Retry-After`)
  t.ok(
    servedMs >= 2_000,
    `${kind}: cached keys kept serving for ${servedMs} ms (their window was ${TTL_S + MAX_STALE_S} s)`,
  )
  t.equal((await app.operations.inject('/readyz')).statusCode, 503, `${kind}: /readyz says not ready`)
  t.equal((await rawRequest(url, { target: '/healthz' })).status, 200, `${kind}: /healthz says alive`)
  const attempts = issuer.jwksRequests - requestsBefore

  await repair(o)
  const repairedAt = Date.now()
  let recovered = false
  while (!recovered && Date.now() - repairedAt < RECOVERY_DEADLINE_MS) {
    recovered = (await call(await issuer.mint())).status === 200
    if (!recovered) await sleep(50)
  }
  const recoveryMs = Date.now() - repairedAt
  t.ok(recovered, `${kind}: recovered ${recoveryMs} ms after the issuer came back`)
  t.equal((await call(cached)).status, 200, `${kind}: the token verified before the outage works again`)
  t.equal((await app.operations.inject('/readyz')).statusCode, 200, `${kind}: ready again`)
  t.comment(
    `${kind}: served stale for ${servedMs} ms, then 503 KG_KEYS_STALE; ${kind === 'down' ? `${proxy.connections} connections in all` : `${attempts} JWKS requests reached the issuer during the outage`}; recovered in ${recoveryMs} ms`,
  )
}

/** What a broken issuer or a confused proxy answers for the JWKS. */
const GARBAGE: Array<(reply: FastifyReply) => unknown> = [
  // Well-formed JSON without a single usable key must not replace the keys held.
  (reply) => reply.send({ keys: [] }),
  (reply) =>
    reply.send({
      keys: [
        { kty: 'RSA', kid: 'broken', n: 'AQAB', e: 'AQAB' },
        { kty: 'oct', k: 'c2VjcmV0' },
      ],
    }),
  (reply) => reply.type('text/html').send('<html><body>502 Bad Gateway</body></html>'),
  (reply) => reply.type('application/json').send('{"keys": [ {"kty": "RSA", "n": "AQAB"'),
  (reply) => reply.send({ keys: 'none' }),
  (reply) => reply.send([{ kty: 'RSA' }]),
  (reply) => reply.type('application/json').send(`{"keys":[],"pad":"${'x'.repeat(300 * 1024)}"}`),
  (reply) => reply.code(500).send({ error: 'boom' }),
]

const normal = async ({ issuer }: Outage) => {
  issuer.respond = undefined
}

t.test(
  'the issuer down, slow, answering garbage or redirecting: stale keys serve, then 503, then recovery',
  async (t) => {
    const attacker = await startAttacker()
    t.teardown(() => attacker.close())
    let slow = 0
    let junk = 0
    let hop = 0
    // Four gateways, one outage each, at the same time: the timings are the gateways' own, not the test's.
    await Promise.all([
      outage(
        t,
        'down',
        ({ proxy }) => proxy.set('refuse'),
        ({ proxy }) => proxy.set('pass'),
      ),
      outage(
        t,
        'slow',
        async ({ issuer }) => {
          issuer.respond = (reply: FastifyReply) => {
            if (slow++ % 2 === 0) return new Promise(() => {})
            reply.raw.writeHead(200, { 'content-type': 'application/json' })
            reply.raw.write('{"keys":[')
            return reply.hijack()
          }
        },
        normal,
      ),
      outage(
        t,
        'garbage',
        async ({ issuer }) => {
          issuer.respond = (reply) => GARBAGE[junk++ % GARBAGE.length]!(reply)
        },
        normal,
      ),
      outage(
        t,
        'redirect',
        async ({ issuer }) => {
          issuer.respond = (reply) =>
            reply.redirect(`${attacker.url}/jwks.json`, [301, 302, 307, 308][hop++ % 4])
        },
        normal,
      ),
    ])
    t.ok(junk >= GARBAGE.length, `every kind of garbage was served (${junk} answers)`)
    t.equal(attacker.connections, 0, "the attacker's server was never contacted")
  },
)
