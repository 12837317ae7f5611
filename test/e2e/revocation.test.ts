/**
 * Revocation across real processes: the issuer, the gateway and the services each their own process, the
 * verifiers subscribed to the issuer's revocation feed. Every revocation must reach the gateway and a
 * service reached directly, while verification stays local; the feed going away and coming back loses
 * nothing; sensitive routes refuse while it is away, ordinary ones keep serving.
 */
import t from 'tap'
import { FEED_MAX_BACKOFF_MS } from '../../lib/auth/feed-protocol.js'
import { startProcesses } from '../helpers/processes.js'
import { HttpClient } from '../helpers/system.js'

const ADMIN = { email: 'admin@example.com', password: 'admin passphrase 1' }
const PASSWORD = 'correct horse battery'

/** A revocation reaches a subscribed verifier within this, in milliseconds. */
const PROPAGATION_LIMIT_MS = 5_000

/** Polls until `path` answers 401 for `token`; resolves with how long that took (ms), or fails after `limitMs`. */
async function refusedWithin(
  base: string,
  path: string,
  token: string,
  limitMs: number,
): Promise<{ ms: number; code: string }> {
  const client = new HttpClient(base)
  const started = performance.now()
  for (;;) {
    const r = await client.call('GET', path, { token })
    if (r.status === 401) return { ms: performance.now() - started, code: r.json.code as string }
    if (performance.now() - started > limitMs) throw new Error(`${base}${path} still answers ${r.status}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

t.test('revocations reach the gateway and every service through the feed', async (t) => {
  const system = await startProcesses({
    env: {
      KEYGATE_ADMIN_EMAIL: ADMIN.email,
      KEYGATE_ADMIN_PASSWORD: ADMIN.password,
      REVOCATION_FEED: 'on',
      REVOCATION_FEED_MAX_STALE: '2s',
      REFRESH_REUSE_GRACE: '1s',
      // The test polls every few milliseconds to see the moment a revocation lands.
      GATEWAY_RATE_LIMIT: '100000/1m',
    },
  })
  t.teardown(() => system.stop())
  const gateway = system.urls.gateway
  const direct = { profile: system.urls.profile, orders: system.urls.orders }
  const latencies: number[] = []

  /** Checks a token is refused at the gateway and at profile and orders reached directly. */
  async function expectRevoked(token: string, what: string, limitMs = PROPAGATION_LIMIT_MS) {
    for (const [base, path] of [
      [gateway, '/api/profile/me'],
      [direct.profile, '/me'],
      [direct.orders, '/orders'],
    ] as const) {
      const { ms, code } = await refusedWithin(base, path, token, limitMs)
      t.equal(
        code,
        'KG_TOKEN_REVOKED',
        `${what}: refused at ${path === '/api/profile/me' ? 'the gateway' : path}`,
      )
      latencies.push(ms)
    }
  }
  async function expectAccepted(token: string, what: string) {
    t.equal(
      (await new HttpClient(gateway).call('GET', '/api/profile/me', { token })).status,
      200,
      `${what} (gateway)`,
    )
    t.equal(
      (await new HttpClient(direct.profile).call('GET', '/me', { token })).status,
      200,
      `${what} (profile)`,
    )
  }

  const user = { email: 'ada@example.com', password: PASSWORD }
  await new HttpClient(gateway).call('POST', '/auth/register', { body: user })
  const login = async (who = user) => {
    const client = new HttpClient(gateway)
    const r = await client.call('POST', '/auth/login', { body: who })
    return { client, token: r.json.access_token as string, csrf: r.json.csrf_token as string }
  }

  // Logout: that session's access token.
  const s1 = await login()
  await expectAccepted(s1.token, 'a fresh token works')
  t.equal(
    (await s1.client.call('POST', '/auth/logout', { headers: { 'x-csrf-token': s1.csrf } })).status,
    204,
  )
  await expectRevoked(s1.token, 'logout')

  // Logout-all: every session of the user.
  const s2 = await login()
  const s3 = await login()
  t.equal((await s2.client.call('POST', '/auth/logout-all', { token: s2.token })).status, 204)
  await expectRevoked(s2.token, 'logout-all, the calling session')
  await expectRevoked(s3.token, 'logout-all, another session')

  // Refresh-token reuse: the whole family's access tokens.
  const s4 = await login()
  const stolenRefresh = s4.client.cookies.get('kg_refresh')!
  const rotated = await s4.client.call('POST', '/auth/refresh', { headers: { 'x-csrf-token': s4.csrf } })
  t.equal(rotated.status, 200)
  const s4b = rotated.json.access_token as string
  await new Promise((r) => setTimeout(r, 1_200)) // past the two-tab grace window
  const thief = new HttpClient(gateway)
  thief.cookies.set('kg_refresh', stolenRefresh)
  thief.cookies.set('kg_csrf', s4.csrf)
  const reuse = await thief.call('POST', '/auth/refresh', { headers: { 'x-csrf-token': s4.csrf } })
  t.equal(reuse.json.code, 'KG_REFRESH_REUSED')
  await expectRevoked(s4.token, 'refresh reuse, the first token of the family')
  await expectRevoked(s4b, 'refresh reuse, the rotated token')

  // Disabling a user: their access tokens and unspent download links, and no login any more.
  const admin = await login(ADMIN)
  const bob = { email: 'bob@example.com', password: PASSWORD }
  await new HttpClient(gateway).call('POST', '/auth/register', { body: bob })
  const b1 = await login(bob)
  t.equal(
    (
      await b1.client.call('PUT', '/api/files/bob.txt', {
        token: b1.token,
        raw: 'bob notes',
        headers: { 'content-type': 'text/plain' },
      })
    ).status,
    201,
  )
  const link = new URL(
    (await b1.client.call('POST', '/api/files/bob.txt/link', { token: b1.token })).json.url,
  )
  const users = await admin.client.call('GET', '/api/admin/users', { token: admin.token })
  const bobId = (users.json.users as Array<{ id: string; email: string }>).find(
    (u) => u.email === bob.email,
  )!.id
  const disabled = await admin.client.call('POST', `/api/admin/users/${bobId}/disable`, {
    token: admin.token,
  })
  t.equal(disabled.status, 200, 'the admin disables the user')
  await expectRevoked(b1.token, 'disabling')
  // files has the revocation too before the link is tried (a download before it would spend the link).
  const atFiles = await refusedWithin(system.urls.files, '/files', b1.token, PROPAGATION_LIMIT_MS)
  t.equal(atFiles.code, 'KG_TOKEN_REVOKED', 'disabling: refused at files')
  const download = await new HttpClient(gateway).call('GET', link.pathname)
  t.equal(download.status, 410, 'the unspent download link died with the user’s rights')
  t.equal(
    (await new HttpClient(gateway).call('POST', '/auth/login', { body: bob })).json.code,
    'KG_ACCOUNT_DISABLED',
  )

  // Emergency key revocation: every token that key signed; the next fresh token works.
  const s5 = await login()
  const keys = await admin.client.call('GET', '/api/admin/keys', { token: admin.token })
  const active = (keys.json.keys as Array<{ kid: string; state: string }>).find((k) => k.state === 'active')!
  const revoked = await admin.client.call('POST', `/api/admin/keys/${active.kid}/revoke`, {
    token: admin.token,
  })
  t.equal(revoked.status, 200, 'the admin revokes the signing key')
  await expectRevoked(s5.token, 'key revocation')
  const s6 = await login()
  await expectAccepted(s6.token, 'a token from the promoted key works at once')

  // The feed goes away (the issuer is killed) and comes back: nothing recorded meanwhile is lost.
  const admin2 = await login(ADMIN)
  t.equal((await new HttpClient(gateway).call('GET', '/api/admin/keys', { token: admin2.token })).status, 200)
  await system.kill('issuer', 'SIGKILL')
  const killedAt = Date.now()
  await expectAccepted(s6.token, 'with the feed down, ordinary routes keep accepting')
  await new Promise((r) => setTimeout(r, Math.max(0, killedAt + 2_500 - Date.now())))
  const sensitive = await new HttpClient(gateway).call('GET', '/api/admin/keys', { token: admin2.token })
  t.equal(sensitive.status, 503, 'past REVOCATION_FEED_MAX_STALE, the sensitive admin route refuses')
  t.equal(sensitive.json.code, 'KG_REVOCATION_FEED_STALE')
  await expectAccepted(s6.token, 'while ordinary routes still accept')
  const keysNow = await system.cli(['keys', 'list'])
  const signing = /^(\S+)\s+active/m.exec(keysNow.stdout)?.[1]
  t.ok(signing, 'the command line reads the key set while the issuer is down')
  const cli = await system.cli(['keys', 'revoke', signing!])
  t.equal(cli.code, 0, `revoked from the command line while the issuer is down: ${cli.stderr}`)
  await system.start('issuer')
  // Verifiers retry a lost feed with a doubling backoff of at most FEED_MAX_BACKOFF_MS: the next try after
  // the restart may be that far off (how far depends on how long the issuer was down), then propagation.
  await expectRevoked(
    s6.token,
    'a revocation recorded while the feed was down, delivered on reconnect',
    FEED_MAX_BACKOFF_MS + PROPAGATION_LIMIT_MS,
  )
  t.equal(
    (await new HttpClient(gateway).call('GET', '/api/profile/me', { token: (await login()).token })).status,
    200,
    'after the restart, fresh tokens work',
  )

  latencies.sort((a, b) => a - b)
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!.toFixed(1)
  t.comment(
    `time from the revoking request's answer to refusal, ${latencies.length} checks: p50 ${at(0.5)} ms, max ${at(1)} ms`,
  )
})
