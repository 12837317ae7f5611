/**
 * Emergency revocation of the active signing key under load: users keep calling the API through the gateway
 * while an admin revokes the key that signed their tokens. Tokens of that key must be refused everywhere
 * (gateway, and each service reached directly) once the revocation has reached the verifiers; their owners
 * refresh and carry on with tokens of the promoted key; nothing else fails.
 *
 * Verifiers learn of a revoked key two ways, each measured here on its own system:
 * - the JWKS path: the key leaves the published set and verifiers drop it at their next refresh
 *   (JWKS_MAX_AGE 1 s, revocation feed off);
 * - the feed path: the issuer's revocation feed carries a `key` event at once (feed on, JWKS_MAX_AGE 60 s, so
 *   no JWKS refresh can happen within the test).
 */
import t, { type Test } from 'tap'
import { type ProcessSystem, startProcesses } from '../helpers/processes.js'
import { SecretLedger } from '../helpers/secret-ledger.js'
import { HttpClient } from '../helpers/system.js'
import { kidOf, VirtualUser } from '../helpers/virtual-user.js'

const ADMIN = { email: 'admin@example.com', password: 'admin passphrase for revocation' }
const USERS = 6
const REFUSED = new Set(['KG_TOKEN_KEY_UNKNOWN', 'KG_TOKEN_REVOKED'])
/** Generous: the JWKS path takes about one max-age, the feed path well under a second. */
const PROPAGATION_DEADLINE_MS = 20_000

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function revokeUnderLoad(t: Test, path: 'jwks' | 'feed', env: Record<string, string>): Promise<void> {
  const system: ProcessSystem = await startProcesses({
    env: {
      GATEWAY_RATE_LIMIT: '1000000/1m',
      KEYGATE_ADMIN_EMAIL: ADMIN.email,
      KEYGATE_ADMIN_PASSWORD: ADMIN.password,
      ...env,
    },
  })
  t.teardown(() => system.stop())
  const ledger = new SecretLedger()
  ledger.add('password', ADMIN.password)
  const admin = new HttpClient(system.urls.issuer)
  const adminToken = (await admin.call('POST', '/auth/login', { body: ADMIN })).json.access_token as string
  ledger.add('access token', adminToken)
  const users = Array.from(
    { length: USERS },
    (_, i) => new VirtualUser(system.urls.gateway, ledger, `rev-${path}-${i}`),
  )
  for (const user of users) {
    await user.register()
    t.equal((await user.login()).status, 200)
  }
  const revokedKid = users[0]!.kid!
  const probeToken = users[0]!.token!

  let revokedAt = 0
  // Set before the revocation is sent: verifiers may hear of it (the feed) before the admin's answer arrives.
  let revoking = false
  let stop = false
  const failures: string[] = []
  let requests = 0
  let refusedOld = 0
  let lastOldAcceptedMs = -1
  const load = users.map(async (user) => {
    while (!stop) {
      const kid = user.kid
      const r = await user.call('GET', '/api/profile/me')
      requests++
      if (r.status === 200) {
        if (revokedAt && kid === revokedKid) lastOldAcceptedMs = Math.max(lastOldAcceptedMs, r.at - revokedAt)
        continue
      }
      if (r.status === 401 && kid === revokedKid && revoking && REFUSED.has(r.code ?? '')) {
        refusedOld++
        const refreshed = await user.refresh()
        requests++
        if (refreshed.status !== 200)
          failures.push(`refresh after refusal: ${refreshed.status} ${refreshed.code}`)
        else if (user.kid === revokedKid) failures.push('refresh handed out a token of the revoked key')
        continue
      }
      failures.push(
        `GET /api/profile/me with a token of ${kid === revokedKid ? 'the revoked' : 'another'} key: ${r.status} ${r.code ?? ''}`,
      )
    }
  })

  await sleep(1_500)
  const keys = (await admin.call('GET', '/admin/keys', { token: adminToken })).json.keys as Array<{
    kid: string
    state: string
  }>
  t.equal(
    keys.find((k) => k.state === 'active')?.kid,
    revokedKid,
    `${path}: the users' tokens come from the active key`,
  )
  revoking = true
  const revoke = await admin.call('POST', `/admin/keys/${revokedKid}/revoke`, { token: adminToken })
  revokedAt = Date.now()
  t.equal(revoke.status, 200, `${path}: the admin revoked the active key`)

  // The old token at every entry point, until each refuses it.
  const entries = [
    ['gateway', system.urls.gateway, '/api/profile/me'],
    ['profile', system.urls.profile, '/me'],
    ['orders', system.urls.orders, '/orders'],
    ['files', system.urls.files, '/files'],
  ] as const
  const propagation = await Promise.all(
    entries.map(async ([name, url, route]) => {
      const client = new HttpClient(url)
      for (;;) {
        const r = await client.call('GET', route, { token: probeToken })
        const elapsed = Date.now() - revokedAt
        if (r.status === 401) return { name, elapsed, code: r.json.code as string }
        if (r.status !== 200) return { name, elapsed, code: `unexpected ${r.status} ${r.json.code}` }
        if (elapsed > PROPAGATION_DEADLINE_MS) return { name, elapsed, code: 'still accepted' }
        await sleep(25)
      }
    }),
  )
  for (const p of propagation) {
    t.ok(
      REFUSED.has(p.code),
      `${path}: ${p.name} refuses the revoked key's token after ${p.elapsed} ms (${p.code})`,
    )
  }
  await sleep(1_000)
  stop = true
  await Promise.all(load)

  const fresh = new VirtualUser(system.urls.gateway, ledger, `rev-${path}-fresh`)
  await fresh.register()
  await fresh.login()
  t.not(fresh.kid, revokedKid, `${path}: fresh tokens come from another key`)
  for (const [name, url, route] of entries) {
    const r = await new HttpClient(url).call('GET', route, { token: fresh.token! })
    t.equal(r.status, 200, `${path}: ${name} accepts a fresh token`)
  }
  t.strictSame(
    failures,
    [],
    `${path}: ${requests} requests under load, nothing failed but the revoked key's tokens`,
  )
  t.ok(
    refusedOld > 0,
    `${path}: ${refusedOld} requests with the revoked key's tokens were refused, their owners refreshed`,
  )
  t.comment(
    `revocation (${path} path): refused at ${propagation.map((p) => `${p.name} +${p.elapsed} ms`).join(', ')}; last acceptance of an old token under load +${lastOldAcceptedMs} ms; ${requests} requests, ${failures.length} unexpected`,
  )
  t.strictSame(ledger.leaksIn('system', system.output()), [], `${path}: no secret in any log`)
  t.equal(kidOf(probeToken), revokedKid)
}

t.test('the JWKS path: revocation reaches verifiers at their next JWKS refresh', (t) =>
  revokeUnderLoad(t, 'jwks', {
    REVOCATION_FEED: 'off',
    JWKS_MAX_AGE: '1s',
    KEY_PUBLISH_LEAD: '2s',
    JWKS_MIN_TTL: '500ms',
    JWKS_COOLDOWN: '1s',
  }),
)

t.test('the feed path: revocation reaches verifiers through the revocation feed', (t) =>
  revokeUnderLoad(t, 'feed', {
    REVOCATION_FEED: 'on',
    JWKS_MAX_AGE: '60s',
    KEY_PUBLISH_LEAD: '60s',
  }),
)
