import t from 'tap'
import { LoginThrottle } from '../../../services/issuer/login-throttle.js'
import { issuerFixture, login, PASSWORD, register } from './fixtures.js'

const attempt = (
  app: Awaited<ReturnType<typeof issuerFixture>>['app'],
  email: string,
  password: string,
  remoteAddress = '198.51.100.1',
) => app.inject({ method: 'POST', url: '/auth/login', remoteAddress, payload: { email, password } })

t.test(
  'per account: over the limit, 429 with Retry-After — for existing and unknown accounts alike',
  async (t) => {
    const { app } = await issuerFixture(t, {
      env: { LOGIN_MAX_FAILURES_PER_ACCOUNT: '3', LOGIN_THROTTLE_WINDOW: '15m' },
    })
    await register(app, 'victim@example.com')
    for (const email of ['victim@example.com', 'ghost@example.com']) {
      for (let i = 0; i < 3; i++) {
        t.equal((await attempt(app, email, 'wrong', `198.51.100.${i + 10}`)).statusCode, 401)
      }
      const res = await attempt(app, email.toUpperCase(), PASSWORD, '198.51.100.99')
      t.equal(res.statusCode, 429, `${email}: throttled, from any address, even with the right password`)
      t.equal(res.json().code, 'KG_LOGIN_THROTTLED')
      const retryAfter = Number(res.headers['retry-after'])
      t.ok(retryAfter > 890 && retryAfter <= 900, `${email}: Retry-After in seconds (${retryAfter})`)
    }
    const other = await register(app, 'bystander@example.com')
    t.ok(other)
    t.ok((await login(app, 'bystander@example.com')).accessToken, 'other accounts are unaffected')
    const metrics = (await app.operations.inject('/metrics')).body
    t.match(metrics, /keygate_issuer_logins_total\{outcome="throttled",component="issuer"\} 2/)
    t.match(metrics, /keygate_issuer_logins_total\{outcome="invalid_credentials",component="issuer"\} 6/)
  },
)

t.test('a success resets the account counter', async (t) => {
  const { app } = await issuerFixture(t, { env: { LOGIN_MAX_FAILURES_PER_ACCOUNT: '3' } })
  await register(app, 'typo@example.com')
  for (let round = 0; round < 3; round++) {
    t.equal((await attempt(app, 'typo@example.com', 'wrong')).statusCode, 401)
    t.equal((await attempt(app, 'typo@example.com', 'wrong')).statusCode, 401)
    t.equal((await attempt(app, 'typo@example.com', PASSWORD)).statusCode, 200, `round ${round}`)
  }
})

t.test('per address: one client spraying many accounts', async (t) => {
  const { app } = await issuerFixture(t, {
    env: { LOGIN_MAX_FAILURES_PER_ACCOUNT: '100', LOGIN_MAX_FAILURES_PER_ADDRESS: '4' },
  })
  await register(app, 'real@example.com')
  for (let i = 0; i < 4; i++) {
    t.equal((await attempt(app, `user${i}@example.com`, 'guess', '203.0.113.7')).statusCode, 401)
  }
  const res = await attempt(app, 'real@example.com', PASSWORD, '203.0.113.7')
  t.equal(res.statusCode, 429)
  t.ok(Number(res.headers['retry-after']) > 0)
  t.equal(
    (await attempt(app, 'real@example.com', PASSWORD, '203.0.113.8')).statusCode,
    200,
    'other addresses log in',
  )
})

t.test('parallel guesses cannot slip past the limit', async (t) => {
  const throttle = new LoginThrottle({
    maxFailuresPerAccount: 5,
    maxFailuresPerAddress: 1000,
    windowMs: 60_000,
  })
  const results = await Promise.allSettled(
    Array.from({ length: 20 }, () => throttle.attempt('a@example.com', '192.0.2.1')),
  )
  t.equal(results.filter((r) => r.status === 'fulfilled').length, 5)
  t.ok(
    results
      .filter((r) => r.status === 'rejected')
      .every((r) => (r.reason as { code: string }).code === 'KG_LOGIN_THROTTLED'),
  )
})

t.test('the window ends (wall clock: rate-limiter-flexible keeps its own timers)', async (t) => {
  const throttle = new LoginThrottle({
    maxFailuresPerAccount: 1,
    maxFailuresPerAddress: 1000,
    windowMs: 1000,
  })
  await throttle.attempt('w@example.com', '192.0.2.2')
  await t.rejects(throttle.attempt('w@example.com', '192.0.2.2'), { code: 'KG_LOGIN_THROTTLED' })
  await new Promise((resolve) => setTimeout(resolve, 1100))
  await t.resolves(throttle.attempt('w@example.com', '192.0.2.2'))
})
