import t from 'tap'
import { headerOf, issuerFixture, login, register } from './fixtures.js'

const MIN = 60_000
const HOUR = 60 * MIN

const jwksKids = async (app: Awaited<ReturnType<typeof issuerFixture>>['app']) =>
  ((await app.inject('/.well-known/jwks.json')).json().keys as Array<{ kid: string }>).map((k) => k.kid)

t.test(
  'scheduled rotation: published before it signs, retired key kept until its tokens expired',
  async (t) => {
    const { app, clock } = await issuerFixture(t, {
      env: {
        KEY_ROTATION_INTERVAL: '3d',
        KEY_PUBLISH_LEAD: '1h',
        JWKS_MAX_AGE: '5m',
        ACCESS_TOKEN_TTL: '15m',
      },
    })
    await register(app, 'sched@example.com')
    const first = app.issuer.keys.signingKey().kid
    const next = app.issuer.keys.document.keys.find((k) => k.state === 'next')!.kid
    t.ok((await jwksKids(app)).includes(next), 'the next key is in the JWKS from the start')
    const before = await login(app, 'sched@example.com')
    t.equal(headerOf(before.accessToken).kid, first)

    clock.advance(3 * 24 * HOUR - 1)
    await app.issuer.tick()
    t.equal(app.issuer.keys.signingKey().kid, first, 'not yet due')

    clock.advance(1)
    await app.issuer.tick()
    t.equal(app.issuer.keys.signingKey().kid, next, 'due: the pre-published key signs')
    const after = await login(app, 'sched@example.com')
    t.equal(headerOf(after.accessToken).kid, next)
    const kids = await jwksKids(app)
    t.ok(kids.includes(first), 'the retired key is still published')
    t.equal(kids.length, 3)
    const newNext = app.issuer.keys.document.keys.find((k) => k.state === 'next')!.kid

    // Retired keys stay for the token lifetime + the JWKS cache lifetime + 60 s of clock skew.
    clock.advance(15 * MIN + 5 * MIN + MIN - 1)
    await app.issuer.tick()
    t.ok((await jwksKids(app)).includes(first), 'kept until removeAt')
    clock.advance(1)
    await app.issuer.tick()
    t.same((await jwksKids(app)).sort(), [next, newNext].sort(), 'dropped at removeAt')
    const metrics = (await app.operations.inject('/metrics')).body
    t.match(metrics, /keygate_issuer_keys\{state="retired",component="issuer"\} 0/)
  },
)

t.test('a revoked next key delays the scheduled rotation until the new one is old enough', async (t) => {
  const { app, clock } = await issuerFixture(t, {
    env: { KEY_ROTATION_INTERVAL: '2h', KEY_PUBLISH_LEAD: '1h' },
  })
  const first = app.issuer.keys.signingKey().kid
  clock.advance(2 * HOUR - 10 * MIN)
  const next = app.issuer.keys.document.keys.find((k) => k.state === 'next')!.kid
  await app.issuer.keys.revoke(next)
  clock.advance(10 * MIN)
  await app.issuer.tick()
  t.equal(
    app.issuer.keys.signingKey().kid,
    first,
    'interval reached, but the replacement next key is too young',
  )
  clock.advance(50 * MIN)
  await app.issuer.tick()
  t.not(app.issuer.keys.signingKey().kid, first, 'rotated once it was published for the lead')
})

t.test('the tick prunes expired sessions and revocation events', async (t) => {
  const { app, clock } = await issuerFixture(t, {
    env: { SESSION_IDLE_TTL: '1h', SESSION_ABSOLUTE_TTL: '2h' },
  })
  const id = await register(app, 'prune@example.com')
  await login(app, 'prune@example.com')
  await app.inject({
    method: 'POST',
    url: '/auth/logout-all',
    headers: { authorization: `Bearer ${(await login(app, 'prune@example.com')).accessToken}` },
  })
  t.equal((await app.issuer.store.listSessions(id)).length, 2)
  t.equal((await app.issuer.store.listRevocations(0, 10)).length, 1)
  clock.advance(HOUR)
  await app.issuer.tick()
  t.same(await app.issuer.store.listSessions(id), [], 'expired and revoked sessions are gone')
  t.same(await app.issuer.store.listRevocations(0, 10), [], 'events past their expiry are gone')
})
