import t from 'tap'
import { claimsOf, cookie, issuerFixture, login, refresh, refreshRequest, register } from './fixtures.js'

const SECOND = 1000
const DAY = 86_400_000

t.test('refresh rotates the refresh token and mints a new access token', async (t) => {
  const { app, clock } = await issuerFixture(t)
  await register(app, 'r@example.com')
  const s1 = await login(app, 'r@example.com')
  clock.advance(60 * SECOND)
  const res = await refreshRequest(app, s1.refreshToken, s1.csrfToken)
  t.equal(res.statusCode, 200)
  t.equal(res.headers['cache-control'], 'no-store')
  t.equal(res.headers.pragma, 'no-cache')
  const body = res.json()
  t.equal(body.token_type, 'Bearer')
  t.equal(body.csrf_token, s1.csrfToken, 'the CSRF token belongs to the session and stays')
  const rotated = cookie(res, 'kg_refresh')!
  t.not(rotated.value, s1.refreshToken, 'a new refresh token')
  t.equal(rotated.path, '/auth')
  t.equal(rotated.maxAge, 30 * 24 * 3600 - 60, 'Max-Age is what is left of the absolute lifetime')
  t.equal(cookie(res, 'kg_csrf')!.value, s1.csrfToken)
  const before = claimsOf(s1.accessToken)
  const after = claimsOf(body.access_token)
  t.equal(after.sid, before.sid)
  t.equal(after.iat, (before.iat as number) + 60)
  t.not(after.jti, before.jti)
})

t.test('roles are re-read from the user at every refresh', async (t) => {
  const { app } = await issuerFixture(t)
  const id = await register(app, 'roles@example.com')
  const s = await login(app, 'roles@example.com')
  await app.issuer.store.setUserRoles(id, ['user', 'editor'], Date.now())
  const next = await refresh(app, s)
  t.same(claimsOf(next.accessToken).roles, ['user', 'editor'])
})

t.test('a rotated token presented after the grace window revokes the whole family', async (t) => {
  const { app, clock } = await issuerFixture(t)
  await register(app, 'reuse@example.com')
  const s1 = await login(app, 'reuse@example.com')
  const s2 = await refresh(app, s1)
  clock.advance(11 * SECOND)
  const replay = await refreshRequest(app, s1.refreshToken, s1.csrfToken)
  t.equal(replay.statusCode, 401)
  t.same(replay.json().code, 'KG_REFRESH_REUSED')
  t.equal(replay.json().error, 'invalid_grant')
  const legit = await refreshRequest(app, s2.refreshToken, s2.csrfToken)
  t.equal(legit.statusCode, 401, "the thief's replay also ended the legitimate holder's session")
  t.equal(legit.json().code, 'KG_REFRESH_INVALID')

  const sid = claimsOf(s1.accessToken).sid as string
  const session = await app.issuer.store.findSession(sid)
  t.equal(session!.revokedReason, 'refresh_reuse')
  const events = await app.issuer.store.listRevocations(0, 10)
  t.match(events, [{ type: 'session', sessionId: sid }])
  const metrics = (await app.operations.inject('/metrics')).body
  t.match(metrics, /keygate_issuer_refresh_reuse_total\{component="issuer"\} 1/)
  t.match(metrics, /keygate_issuer_refreshes_total\{outcome="reused",component="issuer"\} 1/)
})

t.test('two tabs refreshing with the same cookie at once both stay logged in', async (t) => {
  const { app, clock } = await issuerFixture(t)
  await register(app, 'tabs@example.com')
  const s = await login(app, 'tabs@example.com')
  const [a, b] = await Promise.all([
    refreshRequest(app, s.refreshToken, s.csrfToken),
    refreshRequest(app, s.refreshToken, s.csrfToken),
  ])
  t.equal(a.statusCode, 200)
  t.equal(b.statusCode, 200)
  const tokenA = cookie(a, 'kg_refresh')!.value
  const tokenB = cookie(b, 'kg_refresh')!.value
  t.not(tokenA, tokenB)
  clock.advance(SECOND)
  // Whichever cookie the browser kept works.
  const next = await refreshRequest(app, tokenB, s.csrfToken)
  t.equal(next.statusCode, 200)
  const metrics = (await app.operations.inject('/metrics')).body
  t.match(metrics, /keygate_issuer_refreshes_total\{outcome="grace",component="issuer"\} 1/)

  clock.advance(5 * SECOND)
  const late = await refreshRequest(app, s.refreshToken, s.csrfToken)
  t.equal(late.statusCode, 200, 'the original token is still within its grace window')
  clock.advance(10 * SECOND)
  const tooLate = await refreshRequest(app, s.refreshToken, s.csrfToken)
  t.equal(tooLate.statusCode, 401, 'but not beyond it')
  t.equal(tooLate.json().code, 'KG_REFRESH_REUSED')
})

t.test('sessions expire after inactivity', async (t) => {
  const { app, clock } = await issuerFixture(t, {
    env: { SESSION_IDLE_TTL: '1d', SESSION_ABSOLUTE_TTL: '3d' },
  })
  await register(app, 'idle@example.com')
  let s = await login(app, 'idle@example.com')
  clock.advance(DAY - SECOND)
  s = await refresh(app, s)
  clock.advance(DAY - SECOND)
  s = await refresh(app, s)
  t.pass('each refresh extends the idle expiry')
  clock.advance(DAY)
  const res = await refreshRequest(app, s.refreshToken, s.csrfToken)
  t.equal(res.statusCode, 401)
  t.equal(res.json().code, 'KG_REFRESH_INVALID')
})

t.test('sessions end at their absolute lifetime, however active', async (t) => {
  const { app, clock } = await issuerFixture(t, {
    env: { SESSION_IDLE_TTL: '1d', SESSION_ABSOLUTE_TTL: '2d' },
  })
  await register(app, 'abs@example.com')
  let s = await login(app, 'abs@example.com')
  for (let i = 0; i < 3; i++) {
    clock.advance(DAY / 2)
    s = await refresh(app, s)
  }
  t.equal(cookie(s.response, 'kg_refresh')!.maxAge, 2 * 86_400 - 3 * 43_200, 'Max-Age shrinks toward the end')
  clock.advance(DAY / 2)
  const res = await refreshRequest(app, s.refreshToken, s.csrfToken)
  t.equal(res.statusCode, 401)
  t.equal(res.json().code, 'KG_REFRESH_INVALID')
})

t.test('missing or unknown refresh cookie', async (t) => {
  const { app } = await issuerFixture(t)
  for (const res of [
    await refreshRequest(app, undefined, 'x'),
    await refreshRequest(app, 'not-a-token', 'x'),
  ]) {
    t.equal(res.statusCode, 401)
    t.equal(res.json().code, 'KG_REFRESH_INVALID')
  }
})
