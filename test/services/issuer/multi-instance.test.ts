/**
 * Two issuer instances on one PostgreSQL database (a throwaway one per run): one key set, one instance at a
 * time doing scheduled key maintenance, refresh rotation that stays exactly-once (or grace) across both,
 * and revocations made through one delivered on the other's feed — also after its LISTEN connection was
 * killed. Skipped with a message without PostgreSQL, unless KEYGATE_REQUIRE_POSTGRES=1.
 */
import { createHash } from 'node:crypto'
import { createLocalJWKSet, jwtVerify } from 'jose'
import pg from 'pg'
import t, { type Test } from 'tap'
import { FEED_SECRET_HEADER } from '../../../lib/auth/feed-protocol.js'
import { LISTENER_APPLICATION_NAME } from '../../../services/issuer/feed/revocation-notifications.js'
import { postgresUnavailable, testDatabase } from '../../helpers/postgres.js'
import { openStream } from './feed/stream-reader.js'
import {
  bearer,
  claimsOf,
  FakeClock,
  httpClient,
  issuerFixture,
  listening,
  login,
  postgresEnv,
  refreshRequest,
  register,
} from './fixtures.js'

const SECRET = 'feed-secret-for-two-instances'
const HOUR = 3_600_000

const skip = await postgresUnavailable()

/** Two instances on one new database, sharing a clock, both listening. */
async function twoInstances(t: Test, env: Record<string, string> = {}) {
  const db = await testDatabase(t)
  const clock = new FakeClock()
  const shared = { ...postgresEnv(db.url), REVOCATION_FEED_SECRET: SECRET, FEED_HEARTBEAT: '200ms', ...env }
  // Started together: both find an empty key set, and exactly one set must come out of it.
  const [a, b] = await Promise.all([
    issuerFixture(t, { env: shared, clock }),
    issuerFixture(t, { env: shared, clock }),
  ])
  const [baseA, baseB] = await Promise.all([listening(a.app), listening(b.app)])
  const agent = httpClient(t)
  const subscribe = async (base: string) => {
    const stream = await openStream(base, SECRET, { dispatcher: agent })
    t.teardown(() => stream.close())
    await stream.waitFor((m) => m.event === 'heartbeat')
    return stream
  }
  return { db, clock, a, b, baseA, baseB, subscribe }
}

const jwksOf = async (app: Awaited<ReturnType<typeof issuerFixture>>['app']) =>
  (await app.inject('/.well-known/jwks.json')).json()

function counter(metrics: string, outcome: string): number {
  const m = new RegExp(`keygate_issuer_refreshes_total\\{outcome="${outcome}"[^}]*\\} (\\d+)`).exec(metrics)
  return Number(m?.[1] ?? 0)
}

async function until(check: () => Promise<boolean> | boolean, timeoutMs = 5000): Promise<number | undefined> {
  const started = Date.now()
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) return undefined
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return Date.now() - started
}

t.test('two issuer instances on one PostgreSQL database', { skip }, async (t) => {
  t.test('one key set: the same JWKS, and each verifies what the other signs', async (t) => {
    const { a, b } = await twoInstances(t)
    t.same(await jwksOf(a.app), await jwksOf(b.app))
    t.equal(a.app.issuer.keys.signingKey().kid, b.app.issuer.keys.signingKey().kid)
    await register(a.app, 'both@example.com')
    const fromA = await login(a.app, 'both@example.com')
    const fromB = await login(b.app, 'both@example.com')
    for (const [token, verifier] of [
      [fromA.accessToken, b],
      [fromB.accessToken, a],
    ] as const) {
      const { payload } = await jwtVerify(token, createLocalJWKSet(await jwksOf(verifier.app)), {
        issuer: 'http://issuer.test',
        audience: 'keygate-api',
        typ: 'at+jwt',
      })
      t.match(payload, { client_id: 'keygate-web' })
    }
    const res = await b.app.inject({
      method: 'POST',
      url: '/auth/logout-all',
      headers: bearer(fromA.accessToken),
    })
    t.equal(res.statusCode, 204, "B's own routes accept A's token")
  })

  t.test('a key rotated through one instance is served by the other within about a second', async (t) => {
    const { a, b } = await twoInstances(t)
    const admin = { KEYGATE_ADMIN_EMAIL: 'admin@example.com' }
    await a.app.issuer.store.setUserRoles(
      await register(a.app, admin.KEYGATE_ADMIN_EMAIL),
      ['admin'],
      a.clock.now(),
    )
    const { accessToken } = await login(a.app, admin.KEYGATE_ADMIN_EMAIL)
    const next = a.app.issuer.keys.document.keys.find((k) => k.state === 'next')!.kid
    const res = await a.app.inject({
      method: 'POST',
      url: '/admin/keys/rotate',
      headers: bearer(accessToken),
    })
    t.equal(res.statusCode, 200, res.body)
    t.equal(a.app.issuer.keys.signingKey().kid, next)
    // B's own scheduler (a real one-second timer) notices the new revision.
    const took = await until(async () => b.app.issuer.keys.signingKey().kid === next, 3000)
    t.ok(took !== undefined && took < 1500, `B signs with the promoted key after ${took} ms`)
    t.same(await jwksOf(b.app), await jwksOf(a.app), 'and publishes the same JWKS')
  })

  t.test('only one instance runs scheduled key maintenance at a time', async (t) => {
    const { a, b, clock, db } = await twoInstances(t, { KEY_ROTATION_INTERVAL: '2h', KEY_PUBLISH_LEAD: '1h' })
    const first = a.app.issuer.keys.signingKey().kid
    const ran = () => [a, b].map((x) => x.logs.find('scheduled key maintenance ran').length)
    const waited = () =>
      [a, b].map((x) => x.logs.find('key maintenance left to the instance holding the lock').length)

    // Another holder of the lock (a third instance, say): neither instance rotates, however due.
    const holder = new pg.Client({ connectionString: db.url })
    await holder.connect()
    t.teardown(() => holder.end())
    await holder.query(`select pg_advisory_lock(x'6b67'::int, 2)`)
    clock.advance(2 * HOUR)
    await Promise.all([a.app.issuer.tick(), b.app.issuer.tick()])
    t.same(ran(), [0, 0], 'nobody rotated while another instance held the lock')
    t.ok(
      waited().every((n) => n >= 1),
      'both left it to the holder',
    )
    t.equal(a.app.issuer.keys.signingKey().kid, first)
    await holder.query(`select pg_advisory_unlock(x'6b67'::int, 2)`)

    // Both tick at once: one rotates, the other leaves it (or finds it done) and reloads.
    await Promise.all([a.app.issuer.tick(), b.app.issuer.tick()])
    await Promise.all([a.app.issuer.tick(), b.app.issuer.tick()])
    t.equal(
      ran().reduce((x, y) => x + y),
      1,
      `exactly one rotation between them (a, b: ${ran().join(', ')})`,
    )
    t.not(a.app.issuer.keys.signingKey().kid, first)
    t.equal(a.app.issuer.keys.signingKey().kid, b.app.issuer.keys.signingKey().kid)
    t.same(await jwksOf(a.app), await jwksOf(b.app))
    t.equal((await a.app.issuer.store.readKeySet()).keys.length, 3, 'retired, active, next: one rotation')
  })

  t.test('concurrent refreshes of one token through both instances', async (t) => {
    const { a, b, clock } = await twoInstances(t)
    await register(a.app, 'tabs@example.com')
    const session = await login(a.app, 'tabs@example.com')
    const sid = claimsOf(session.accessToken).sid as string
    const ROUNDS = 24

    // Within the grace window: exactly one rotation wins, every other refresh earns a sibling token.
    const results = await Promise.all(
      Array.from({ length: ROUNDS }, (_, i) =>
        refreshRequest(i % 2 ? b.app : a.app, session.refreshToken, session.csrfToken),
      ),
    )
    t.same(
      results.map((r) => r.statusCode),
      Array(ROUNDS).fill(200),
      'every tab keeps its session',
    )
    const metrics = [
      await a.app.operations.inject('/metrics'),
      await b.app.operations.inject('/metrics'),
    ].map((r) => r.body)
    t.equal(counter(metrics[0]!, 'rotated') + counter(metrics[1]!, 'rotated'), 1, 'exactly one rotation')
    t.equal(counter(metrics[0]!, 'grace') + counter(metrics[1]!, 'grace'), ROUNDS - 1, 'the rest by grace')
    const store = a.app.issuer.store
    t.equal((await store.findSession(sid))!.revokedAt, null, 'the session lives')
    const issued = results.map((r) => r.cookies.find((c) => c.name === 'kg_refresh')!.value)
    t.equal(new Set(issued).size, ROUNDS, 'every answer a token of its own')
    for (const token of issued) {
      const found = await store.findRefreshToken(createHash('sha256').update(token).digest('base64url'))
      t.equal(found?.token.supersededAt, null, 'and every one of them current: nothing lost')
    }
    t.equal((await refreshRequest(b.app, issued[0], session.csrfToken)).statusCode, 200, 'each one refreshes')

    // After the grace window the first token is a replay: the session goes, once, whoever sees it first.
    clock.advance(11_000)
    const replays = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        refreshRequest(i % 2 ? b.app : a.app, session.refreshToken, session.csrfToken),
      ),
    )
    t.ok(
      replays.every((r) => r.statusCode === 401),
      'every replay refused',
    )
    const codes = replays.map((r) => r.json().code as string)
    t.ok(codes.includes('KG_REFRESH_REUSED'), 'as reuse')
    t.ok(
      codes.every((c) => c === 'KG_REFRESH_REUSED' || c === 'KG_REFRESH_INVALID'),
      'or, once revoked, as invalid',
    )
    t.match(await store.findSession(sid), { revokedReason: 'refresh_reuse' })
    const events = (await store.listRevocations(0, 100)).filter(
      (e) => e.type === 'session' && e.sessionId === sid,
    )
    t.equal(events.length, 1, 'one revocation event for the session')
  })

  t.test("a revocation through one instance reaches the other's feed and verifier", async (t) => {
    const { a, b, baseA, baseB, subscribe } = await twoInstances(t)
    const onB = await subscribe(baseB)
    const onA = await subscribe(baseA)
    const userId = await register(a.app, 'fanout@example.com')
    const s1 = await login(a.app, 'fanout@example.com')

    const started = Date.now()
    const res = await a.app.inject({
      method: 'POST',
      url: '/auth/logout',
      headers: { 'x-csrf-token': s1.csrfToken },
      cookies: { kg_refresh: s1.refreshToken },
    })
    t.equal(res.statusCode, 204)
    const got = await onB.waitFor((m) => m.event === 'revocation', 1000)
    t.match(got.data, { type: 'session', sessionId: claimsOf(s1.accessToken).sid })
    t.comment(`logout through A delivered on B's stream after ${got.at - started} ms`)
    t.ok(got.at - started < 1000)

    a.clock.advance(1)
    const s2 = await login(b.app, 'fanout@example.com')
    a.clock.advance(1)
    const from = onA.messages.length
    await b.app.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(s2.accessToken) })
    const back = await onA.waitFor((m) => m.event === 'revocation', 1000, from)
    t.match(back.data, { type: 'user', subject: userId }, "and logout-all through B on A's")
    await onB.waitFor((m) => m.event === 'revocation' && m.data.type === 'user', 1000)
    t.same(
      onA.revocations().map((e) => e.cursor),
      onB.revocations().map((e) => e.cursor),
      'both streams carry the same events in the same order',
    )

    // A's own Bearer routes refuse the token revoked through B (403 for a live non-admin token, else 401).
    const refused = await until(async () => {
      const r = await a.app.inject({ url: '/admin/keys', headers: bearer(s2.accessToken) })
      return r.statusCode === 401 && r.json().code === 'KG_TOKEN_REVOKED'
    }, 1000)
    t.ok(refused !== undefined, `A refuses the token B revoked (after ${refused} ms)`)
  })

  t.test(
    'the LISTEN connection is reopened when it drops, and nothing recorded meanwhile is lost',
    async (t) => {
      // No polling to fall back on: only the notification can bring A's revocation to B.
      const { a, b, baseB, subscribe, db } = await twoInstances(t, { FEED_POLL_INTERVAL: '1h' })
      const onB = await subscribe(baseB)
      await register(a.app, 'listen@example.com')
      const s1 = await login(a.app, 'listen@example.com')
      const s2 = await login(a.app, 'listen@example.com')

      const admin = new pg.Client({ connectionString: db.url })
      await admin.connect()
      t.teardown(() => admin.end())
      const killed = await admin.query(
        'select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and application_name = $2',
        [db.name, LISTENER_APPLICATION_NAME],
      )
      t.equal(killed.rowCount, 2, "both instances' LISTEN connections killed")
      // Recorded through A while B is not listening.
      await a.app.inject({
        method: 'POST',
        url: '/auth/logout',
        headers: { 'x-csrf-token': s1.csrfToken },
        cookies: { kg_refresh: s1.refreshToken },
      })
      const missed = await onB.waitFor((m) => m.event === 'revocation', 5000)
      t.match(missed.data, { sessionId: claimsOf(s1.accessToken).sid }, 'read on reconnection')
      const reconnected = await until(() => b.app.issuer.feed.notifications!.connected)
      if (!t.ok(reconnected !== undefined, 'B listens again')) t.comment(b.logs.find('LISTEN').join('\n'))

      const started = Date.now()
      await a.app.inject({
        method: 'POST',
        url: '/auth/logout',
        headers: { 'x-csrf-token': s2.csrfToken },
        cookies: { kg_refresh: s2.refreshToken },
      })
      const live = await onB.waitFor(
        (m) =>
          m.event === 'revocation' &&
          m.data.type === 'session' &&
          m.data.sessionId === claimsOf(s2.accessToken).sid,
        1000,
      )
      t.ok(live.at - started < 1000, `and live again (${live.at - started} ms)`)
      t.ok(b.logs.find('revocation LISTEN connection lost').length >= 1, 'the loss was logged')
      t.equal(b.logs.find(SECRET).length, 0)
      const catchUp = await b.app.inject({ url: '/revocations', headers: { [FEED_SECRET_HEADER]: SECRET } })
      t.equal(catchUp.json().events.length, 2, 'the catch-up read on B has both')
    },
  )
})
