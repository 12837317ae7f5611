/**
 * The revocation feed served by a real listening issuer: the feed secret, the paged catch-up read, the
 * stream's order (backlog, heartbeat, live), every kind of revocation arriving within a second, a real
 * lib/auth subscriber losing nothing across a restart, shutdown and the stream limit.
 */
import { join } from 'node:path'
import t from 'tap'
import { type Agent, request } from 'undici'
import { feedSecret } from '../../../../lib/auth-config.js'
import { FEED_SECRET_HEADER } from '../../../../lib/auth/feed-protocol.js'
import { RevocationFeed } from '../../../../lib/auth/revocation-feed.js'
import { RevocationSet } from '../../../../lib/auth/revocation-set.js'
import type { Identity } from '../../../../lib/auth/types.js'
import { buildIssuer } from '../../../../services/issuer/app.js'
import { loadIssuerConfig } from '../../../../services/issuer/config.js'
import { openIssuerStore } from '../../../../services/issuer/store/issuer-store.js'
import type { RevocationEvent } from '../../../../lib/auth/feed-protocol.js'
import { captureLogs } from '../../../helpers/logs.js'
import { openStream, type StreamMessage } from '../feed/stream-reader.js'
import {
  assertNoSecretsLogged,
  bearer,
  claimsOf,
  headerOf,
  httpClient,
  type IssuerFixtureOptions,
  issuerFixture,
  listening,
  login,
  PASSWORD,
  refreshRequest,
  register,
  TEST_ENV,
  tempDir,
} from '../fixtures.js'

const SECRET = 'feed-secret-for-issuer-tests'
const FEED_ENV = { REVOCATION_FEED_SECRET: SECRET, FEED_HEARTBEAT: '200ms' }
const ADMIN = { KEYGATE_ADMIN_EMAIL: 'admin@example.com', KEYGATE_ADMIN_PASSWORD: PASSWORD }

type Test = Parameters<typeof issuerFixture>[0]

async function feedIssuer(t: Test, options: IssuerFixtureOptions = {}) {
  const fixture = await issuerFixture(t, { ...options, env: { ...FEED_ENV, ...options.env } })
  const base = await listening(fixture.app)
  const agent = httpClient(t)
  return {
    ...fixture,
    base,
    agent,
    get: (path: string, headers?: Record<string, string>) => getJson(agent, base, path, headers),
    subscribe: (secret: string, opts: Parameters<typeof openStream>[2] = {}) =>
      openStream(base, secret, { ...opts, dispatcher: agent }),
  }
}

async function getJson(
  agent: Agent,
  base: string,
  path: string,
  headers: Record<string, string> = { [FEED_SECRET_HEADER]: SECRET },
) {
  const res = await request(`${base}${path}`, { headers, dispatcher: agent })
  const text = await res.body.text()
  return { status: res.statusCode, headers: res.headers, body: text ? JSON.parse(text) : undefined }
}

function tokenEvent(now: number, jti: string): RevocationEvent {
  return { type: 'token', tokenId: jti, createdAt: now, expiresAt: now + 60_000 }
}

/** What a verifier makes of an access token, enough for RevocationSet.isRevoked. */
function identityOf(token: string): Identity {
  const claims = claimsOf(token)
  return {
    subject: claims.sub as string,
    principal: claims.sub as string,
    issuer: claims.iss as string,
    clientId: claims.client_id as string,
    sessionId: claims.sid as string,
    roles: [],
    scopes: [],
    tokenId: claims.jti as string,
    issuedAt: claims.iat as number,
    expiresAt: claims.exp as number,
    keyId: headerOf(token).kid as string,
    claims,
    source: 'token',
    token,
  }
}

async function until(check: () => boolean, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) return false
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return true
}

t.test('the feed secret: required on both routes, a rotated list, the generated default', async (t) => {
  const { get, subscribe, logs } = await feedIssuer(t, {
    env: { REVOCATION_FEED_SECRET: `new-${SECRET}, old-${SECRET}` },
  })
  for (const path of ['/revocations', '/revocations/stream']) {
    for (const headers of [
      {} as Record<string, string>,
      { [FEED_SECRET_HEADER]: 'wrong-secret-of-some-length' },
      { [FEED_SECRET_HEADER]: SECRET },
    ]) {
      const res = await get(path, headers)
      t.equal(res.status, 401, `${path} refused with ${JSON.stringify(headers)}`)
      t.match(res.body, { code: 'KG_FEED_UNAUTHORIZED', error: 'invalid_token' })
      t.match(res.headers['www-authenticate'], /^KeygateFeedSecret/)
    }
  }
  for (const secret of [`new-${SECRET}`, `old-${SECRET}`]) {
    t.equal(
      (await get('/revocations', { [FEED_SECRET_HEADER]: secret })).status,
      200,
      'accepted while rotating',
    )
    const stream = await subscribe(secret)
    t.equal(stream.status, 200)
    await stream.waitFor((m) => m.event === 'heartbeat')
    stream.close()
  }
  const bearerOnly = await get('/revocations', { authorization: `Bearer ${SECRET}` })
  t.equal(bearerOnly.status, 401, 'a Bearer header is not the feed secret')
  assertNoSecretsLogged(t, logs, [`new-${SECRET}`, `old-${SECRET}`])

  // No REVOCATION_FEED_SECRET: the issuer and the verifiers of its machine share the generated file.
  const dir = tempDir(t)
  const local = await issuerFixture(t, { dir })
  const localBase = await listening(local.app)
  const localClient = httpClient(t)
  const generated = feedSecret({ DATA_DIR: join(dir, 'data') })
  t.equal(
    (await getJson(localClient, localBase, '/revocations', { [FEED_SECRET_HEADER]: generated })).status,
    200,
  )
  t.equal(
    (await getJson(localClient, localBase, '/revocations', { [FEED_SECRET_HEADER]: SECRET })).status,
    401,
  )
})

t.test('catch-up read: paged from a cursor, in wire format', async (t) => {
  const { app, get, clock } = await feedIssuer(t)
  const stored = []
  for (let i = 0; i < 7; i++)
    stored.push(await app.issuer.store.recordRevocation(tokenEvent(clock.now(), `jti-${i}`)))
  const cursors = stored.map((e) => e.cursor)

  const first = await get('/revocations?after=0&limit=3')
  t.equal(first.status, 200)
  t.equal(first.headers['cache-control'], 'no-store')
  t.same(first.body.events[0], {
    type: 'token',
    tokenId: 'jti-0',
    expiresAt: clock.now() + 60_000,
    cursor: cursors[0],
    createdAt: clock.now(),
  })
  t.same(
    first.body.events.map((e: { cursor: number }) => e.cursor),
    cursors.slice(0, 3),
  )
  t.match(first.body, { cursor: cursors[2], more: true })
  const second = await get(`/revocations?after=${first.body.cursor}&limit=3`)
  t.same(
    second.body.events.map((e: { tokenId: string }) => e.tokenId),
    ['jti-3', 'jti-4', 'jti-5'],
  )
  const last = await get(`/revocations?after=${second.body.cursor}&limit=3`)
  t.match(last.body, { cursor: cursors[6], more: false })
  t.equal(last.body.events.length, 1)
  const empty = await get(`/revocations?after=${last.body.cursor}`)
  t.same(empty.body, { events: [], cursor: cursors[6], more: false }, 'nothing new: the cursor stays')

  const all = await get('/revocations')
  t.equal(all.body.events.length, 7, 'default: from the start, up to 500')
  t.equal((await get('/revocations?limit=9999')).status, 200, 'a larger limit is capped at 1000')
  t.equal((await get('/revocations?limit=0')).body.events.length, 1, 'and a zero limit raised to 1')
  for (const bad of ['?after=-1', '?after=abc', '?limit=12345', '?cursor=1']) {
    const res = await get(`/revocations${bad}`)
    t.equal(res.status, 400, bad)
    t.equal(res.body.code, 'KG_INVALID_REQUEST')
  }
})

t.test(
  'stream: the backlog after the cursor, then a heartbeat, then live events and heartbeats',
  async (t) => {
    const { app, subscribe, clock } = await feedIssuer(t)
    const stored = []
    for (let i = 0; i < 3; i++)
      stored.push(await app.issuer.store.recordRevocation(tokenEvent(clock.now(), `jti-${i}`)))
    const stream = await subscribe(SECRET, { after: stored[0]!.cursor })
    t.teardown(() => stream.close())
    t.equal(stream.status, 200)
    const firstBeat = await stream.waitFor((m) => m.event === 'heartbeat')
    const beatIndex = stream.messages.indexOf(firstBeat)
    t.same(
      stream.messages
        .slice(0, beatIndex)
        .map((m) => (m.event === 'revocation' ? [m.id, (m.data as { tokenId?: string }).tokenId] : m.event)),
      [
        [String(stored[1]!.cursor), 'jti-1'],
        [String(stored[2]!.cursor), 'jti-2'],
      ],
      'the backlog after the cursor, in order, each with its cursor as id',
    )
    t.same(
      firstBeat.data,
      { cursor: stored[2]!.cursor, time: clock.now() },
      'the heartbeat names the latest cursor',
    )

    await register(app, 'live@example.com')
    const { accessToken } = await login(app, 'live@example.com')
    const res = await app.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(accessToken) })
    t.equal(res.statusCode, 204)
    const live = await stream.waitFor((m) => m.event === 'revocation' && m.data.type === 'user')
    t.ok(stream.messages.indexOf(live) > beatIndex, 'live after the first heartbeat')
    t.match(live.data, { type: 'user', subject: claimsOf(accessToken).sub, issuedBefore: clock.now() })
    const next = await stream.waitFor((m) => m.event === 'heartbeat', 2000, stream.messages.indexOf(live))
    t.equal(
      (next.data as { cursor: number }).cursor,
      (live.data as { cursor: number }).cursor,
      'heartbeats go on',
    )
    t.equal(stream.revocations().length, 3, 'each event once')

    // A standard EventSource resumes with Last-Event-ID instead of ?after.
    const resumed = await subscribe(SECRET, {
      headers: { [FEED_SECRET_HEADER]: SECRET, 'last-event-id': String(stored[1]!.cursor) },
    })
    t.teardown(() => resumed.close())
    await resumed.waitFor((m) => m.event === 'heartbeat')
    t.same(
      resumed.revocations().map((e) => e.cursor),
      [stored[2]!.cursor, (live.data as { cursor: number }).cursor],
    )
  },
)

t.test('every kind of revocation reaches an open stream within a second', async (t) => {
  const { app, subscribe, clock } = await feedIssuer(t, { env: ADMIN })
  const admin = await login(app, ADMIN.KEYGATE_ADMIN_EMAIL)
  const stream = await subscribe(SECRET)
  t.teardown(() => stream.close())
  await stream.waitFor((m) => m.event === 'heartbeat')

  const delays: Record<string, number> = {}
  async function expectDelivered(name: string, act: () => Promise<unknown>, match: Record<string, unknown>) {
    const from = stream.messages.length
    const started = Date.now()
    await act()
    const got = (await stream.waitFor((m) => m.event === 'revocation', 1000, from)) as Extract<
      StreamMessage,
      { event: 'revocation' }
    >
    t.match(got.data, match, name)
    delays[name] = got.at - started
    // The clock stands still: a login in the same millisecond as a user-wide revocation counts as revoked.
    clock.advance(1)
  }

  const userId = await register(app, 'kinds@example.com')
  const s1 = await login(app, 'kinds@example.com')
  await expectDelivered(
    'logout',
    () =>
      app.inject({
        method: 'POST',
        url: '/auth/logout',
        headers: { 'x-csrf-token': s1.csrfToken },
        cookies: { kg_refresh: s1.refreshToken },
      }),
    { type: 'session', sessionId: claimsOf(s1.accessToken).sid },
  )
  const s2 = await login(app, 'kinds@example.com')
  await expectDelivered(
    'logout-all',
    () => app.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(s2.accessToken) }),
    { type: 'user', subject: userId },
  )
  const s3 = await login(app, 'kinds@example.com')
  t.equal((await refreshRequest(app, s3.refreshToken, s3.csrfToken)).statusCode, 200)
  clock.advance(11_000)
  await expectDelivered(
    'refresh reuse',
    async () =>
      t.equal((await refreshRequest(app, s3.refreshToken, s3.csrfToken)).json().code, 'KG_REFRESH_REUSED'),
    { type: 'session', sessionId: claimsOf(s3.accessToken).sid },
  )
  await login(app, 'kinds@example.com')
  await expectDelivered(
    'admin logout',
    async () => {
      const res = await app.inject({
        method: 'POST',
        url: `/admin/users/${userId}/logout`,
        headers: bearer(admin.accessToken),
      })
      t.equal(res.statusCode, 204, res.body)
    },
    { type: 'user', subject: userId },
  )
  const s4 = await login(app, 'kinds@example.com')
  await expectDelivered(
    'password change',
    async () => {
      const res = await app.inject({
        method: 'POST',
        url: '/auth/password',
        headers: bearer(s4.accessToken),
        payload: { current_password: PASSWORD, new_password: 'another horse battery' },
      })
      t.equal(res.statusCode, 204, res.body)
    },
    { type: 'user', subject: userId },
  )
  const kid = app.issuer.keys.signingKey().kid
  await expectDelivered(
    'key revocation',
    async () => {
      const fresh = await login(app, ADMIN.KEYGATE_ADMIN_EMAIL)
      const res = await app.inject({
        method: 'POST',
        url: `/admin/keys/${kid}/revoke`,
        headers: bearer(fresh.accessToken),
      })
      t.equal(res.statusCode, 200)
    },
    { type: 'key', kid },
  )
  t.comment(`delays (ms): ${JSON.stringify(delays)}`)
  for (const [name, ms] of Object.entries(delays)) t.ok(ms < 1000, `${name} within a second (${ms} ms)`)
})

t.test('a lib/auth subscriber that loses the issuer resumes from its cursor and loses nothing', async (t) => {
  const dir = tempDir(t)
  const env = { ...TEST_ENV, ...FEED_ENV, KEYS_DIR: join(dir, 'keys'), DATA_DIR: join(dir, 'data') }
  const first = await feedIssuer(t, { dir, env })
  const port = Number(new URL(first.base).port)
  const set = new RevocationSet(TEST_ENV.ISSUER_URL)
  const feed = new RevocationFeed({
    issuer: TEST_ENV.ISSUER_URL,
    url: `${first.base}/revocations`,
    secret: SECRET,
    set,
    dispatcher: first.agent,
  })
  t.teardown(() => feed.close())
  feed.start()
  await feed.synced()

  await register(first.app, 'a@example.com')
  const a = await login(first.app, 'a@example.com')
  await first.app.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(a.accessToken) })
  const [beforeDrop] = await first.app.issuer.store.listRevocations(0, 10)
  t.ok(await until(() => feed.cursor === beforeDrop!.cursor), 'applied while connected')
  t.ok(set.isRevoked(identityOf(a.accessToken)))

  await register(first.app, 'b@example.com')
  const b = await login(first.app, 'b@example.com')
  const c = await login(first.app, 'b@example.com')
  const started = Date.now()
  await first.app.close()
  t.ok(Date.now() - started < 1000, 'the issuer closed at once, its stream open')

  // While no issuer serves the feed, revocations are still recorded (another instance, the command line).
  const store = await openIssuerStore(join(dir, 'data', 'issuer.db'))
  const now = first.clock.now()
  await store.revokeSession(claimsOf(b.accessToken).sid as string, 'admin', now, {
    type: 'session',
    sessionId: claimsOf(b.accessToken).sid as string,
    createdAt: now,
    expiresAt: now + 60_000,
  })
  const lastWhileDown = await store.recordRevocation(tokenEvent(now, claimsOf(c.accessToken).jti as string))
  await store.close()
  t.notOk(set.isRevoked(identityOf(b.accessToken)), 'not known while the feed is down')

  const config = loadIssuerConfig(env)
  const second = buildIssuer({ config, logger: captureLogs('issuer').logger, now: first.clock.now })
  t.teardown(() => second.close())
  await second.listen({ host: '127.0.0.1', port })
  t.ok(
    await until(() => feed.cursor === lastWhileDown.cursor, 10_000),
    'caught up from its cursor after the restart',
  )
  t.ok(set.isRevoked(identityOf(b.accessToken)), 'the session revoked while down')
  t.ok(set.isRevoked(identityOf(c.accessToken)), 'the token revoked while down')
  t.ok(set.isRevoked(identityOf(a.accessToken)), 'and what it had before')
  t.equal(feed.state, 'live')
})

t.test('shutdown ends every open stream promptly', async (t) => {
  const { app, subscribe } = await feedIssuer(t)
  const streams = await Promise.all([1, 2, 3].map(() => subscribe(SECRET)))
  await Promise.all(streams.map((s) => s.waitFor((m) => m.event === 'heartbeat')))
  t.equal(app.issuer.feed.streams.open, 3)
  const started = Date.now()
  await app.close()
  const elapsed = Date.now() - started
  t.ok(elapsed < 1000, `closed in ${elapsed} ms with three streams open`)
  await Promise.all(streams.map((s) => s.ended))
  t.equal(app.issuer.feed.streams.open, 0)
})

t.test('streams beyond FEED_MAX_STREAMS are refused with 503 until one closes', async (t) => {
  const { app, get, subscribe } = await feedIssuer(t, { env: { FEED_MAX_STREAMS: '2' } })
  const open = await Promise.all([1, 2].map(() => subscribe(SECRET)))
  t.teardown(() => open.forEach((s) => s.close()))
  await Promise.all(open.map((s) => s.waitFor((m) => m.event === 'heartbeat')))
  const refused = await get('/revocations/stream')
  t.equal(refused.status, 503)
  t.equal(refused.body.code, 'KG_FEED_BUSY')
  t.equal(refused.headers['retry-after'], '5')
  t.equal((await get('/revocations')).status, 200, 'the catch-up read is not a stream')
  t.match(
    (await app.operations.inject('/metrics')).body,
    /keygate_issuer_feed_streams\{component="issuer"\} 2/,
  )
  open[0]!.close()
  t.ok(await until(() => app.issuer.feed.streams.open === 1), 'a closed stream frees its place')
  const again = await subscribe(SECRET)
  t.teardown(() => again.close())
  t.equal(again.status, 200)
})
