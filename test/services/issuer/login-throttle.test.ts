import { join } from 'node:path'
import t, { type Test } from 'tap'
import {
  FIRST_SLOWDOWN_MS,
  LoginThrottle,
  type LoginThrottleSettings,
} from '../../../services/issuer/login-throttle.js'
import { openIssuerStore } from '../../../services/issuer/store/issuer-store.js'
import { postgresUnavailable, testDatabase } from '../../helpers/postgres.js'
import { FakeClock, issuerFixture, PASSWORD, postgresEnv, register, tempDir } from './fixtures.js'

type App = Awaited<ReturnType<typeof issuerFixture>>['app']

const MINUTE = 60_000

const attempt = (app: App, email: string, password: string, remoteAddress = '198.51.100.1') =>
  app.inject({ method: 'POST', url: '/auth/login', remoteAddress, payload: { email, password } })

const retryAfter = (res: Awaited<ReturnType<typeof attempt>>) => Number(res.headers['retry-after'])

t.test(
  'per (account, address): back-off that doubles, for existing and unknown accounts alike',
  async (t) => {
    const { app, clock } = await issuerFixture(t, {
      env: {
        LOGIN_MAX_FAILURES_PER_ACCOUNT_AND_ADDRESS: '3',
        LOGIN_BACKOFF: '1m',
        LOGIN_THROTTLE_WINDOW: '15m',
      },
    })
    await register(app, 'victim@example.com')
    const seen: Record<string, string[]> = {}
    for (const email of ['victim@example.com', 'ghost@example.com']) {
      const answers: string[] = []
      for (let i = 0; i < 3; i++) answers.push(String((await attempt(app, email, 'wrong')).statusCode))
      const res = await attempt(app, email.toUpperCase(), PASSWORD)
      t.equal(res.statusCode, 429, `${email}: this address waits, even with the right password`)
      t.equal(res.json().code, 'KG_LOGIN_THROTTLED')
      answers.push(`${res.statusCode} ${retryAfter(res)}`)
      seen[email] = answers
    }
    t.same(seen['victim@example.com'], ['401', '401', '401', '429 60'], 'the first back-off is LOGIN_BACKOFF')
    t.same(seen['ghost@example.com'], seen['victim@example.com'], 'an unknown account gets the same answers')

    t.equal(
      (await attempt(app, 'victim@example.com', PASSWORD, '198.51.100.2')).statusCode,
      200,
      'the owner, from another address, is not locked out',
    )
    clock.advance(MINUTE)
    let res = await attempt(app, 'ghost@example.com', 'wrong')
    t.equal(res.statusCode, 401, 'after the back-off, one more try')
    res = await attempt(app, 'ghost@example.com', 'wrong')
    t.equal(res.statusCode, 429)
    t.equal(retryAfter(res), 120, 'and the next back-off is twice as long')
    clock.advance(2 * MINUTE)
    t.equal((await attempt(app, 'ghost@example.com', 'wrong')).statusCode, 401)
    t.equal(retryAfter(await attempt(app, 'ghost@example.com', 'wrong')), 240)
    clock.advance(15 * MINUTE)
    const forgotten: number[] = []
    for (let i = 0; i < 3; i++) forgotten.push((await attempt(app, 'ghost@example.com', 'wrong')).statusCode)
    t.same(forgotten, [401, 401, 401], 'a window after the last failure the counter has forgotten')

    const metrics = (await app.operations.inject('/metrics')).body
    t.match(metrics, /keygate_issuer_logins_total\{outcome="throttled",component="issuer"\} 4/)
  },
)

t.test('per account, from many addresses: only a slow-down, never a refusal of the owner', async (t) => {
  const { app } = await issuerFixture(t, {
    env: {
      LOGIN_MAX_FAILURES_PER_ACCOUNT: '3',
      LOGIN_MAX_FAILURES_PER_ACCOUNT_AND_ADDRESS: '2',
      LOGIN_SLOWDOWN_MAX: '300ms',
    },
  })
  await register(app, 'admin@example.com')
  // Twelve addresses, each one wrong guess: four times the account's limit.
  for (let i = 0; i < 12; i++) {
    t.equal((await attempt(app, 'admin@example.com', `guess ${i}`, `203.0.113.${i}`)).statusCode, 401)
  }
  const started = Date.now()
  const res = await attempt(app, 'admin@example.com', PASSWORD, '198.51.100.77')
  const tookMs = Date.now() - started
  t.equal(res.statusCode, 200, 'the right password from an address with no recent failures gets in')
  t.ok(tookMs >= 290, `slowed down by LOGIN_SLOWDOWN_MAX (${tookMs} ms)`)

  // An address with one recent failure (under its pair limit) is not refused the right password either.
  t.equal((await attempt(app, 'admin@example.com', 'typo', '198.51.100.78')).statusCode, 401)
  t.equal((await attempt(app, 'admin@example.com', PASSWORD, '198.51.100.78')).statusCode, 200)
})

t.test('the slow-down doubles from FIRST_SLOWDOWN_MS up to its maximum', async (t) => {
  const dir = tempDir(t)
  const store = await openIssuerStore(join(dir, 'issuer.db'))
  t.teardown(() => store.close())
  const clock = new FakeClock()
  const delays: number[] = []
  const throttle = new LoginThrottle({
    ...settings({ maxFailuresPerAccount: 2, slowdownMaxMs: 1000 }),
    counters: store.throttleCounters,
    now: clock.now,
    sleep: async (ms) => void delays.push(ms),
  })
  for (let i = 0; i < 7; i++) await throttle.attempt('a@example.com', `192.0.2.${i}`)
  t.same(delays, [FIRST_SLOWDOWN_MS, 2 * FIRST_SLOWDOWN_MS, 1000, 1000, 1000])
  await (await throttle.attempt('a@example.com', '192.0.2.100')).succeeded()
  delays.length = 0
  await throttle.attempt('a@example.com', '192.0.2.101')
  t.same(delays, [], 'a success cleared the account’s counter')
})

t.test('per address: one client spraying many accounts waits; others do not', async (t) => {
  const { app } = await issuerFixture(t, { env: { LOGIN_MAX_FAILURES_PER_ADDRESS: '4' } })
  await register(app, 'real@example.com')
  for (let i = 0; i < 4; i++) {
    t.equal((await attempt(app, `user${i}@example.com`, 'guess', '203.0.113.7')).statusCode, 401)
  }
  const res = await attempt(app, 'real@example.com', PASSWORD, '203.0.113.7')
  t.equal(res.statusCode, 429)
  t.equal(retryAfter(res), 60)
  t.equal(
    (await attempt(app, 'real@example.com', PASSWORD, '203.0.113.8')).statusCode,
    200,
    'other addresses log in',
  )
})

t.test('a success resets the (account, address) counter', async (t) => {
  const { app } = await issuerFixture(t, { env: { LOGIN_MAX_FAILURES_PER_ACCOUNT_AND_ADDRESS: '3' } })
  await register(app, 'typo@example.com')
  for (let round = 0; round < 3; round++) {
    t.equal((await attempt(app, 'typo@example.com', 'wrong')).statusCode, 401)
    t.equal((await attempt(app, 'typo@example.com', 'wrong')).statusCode, 401)
    t.equal((await attempt(app, 'typo@example.com', PASSWORD)).statusCode, 200, `round ${round}`)
  }
})

function settings(overrides: Partial<LoginThrottleSettings> = {}): LoginThrottleSettings {
  return {
    maxFailuresPerAccountAndAddress: 5,
    maxFailuresPerAddress: 1000,
    maxFailuresPerAccount: 1000,
    backoffMs: MINUTE,
    windowMs: 15 * MINUTE,
    slowdownMaxMs: 0,
    ...overrides,
  }
}

async function parallelGuesses(t: Test, counters: Parameters<typeof throttleOn>[0]) {
  const throttle = throttleOn(counters)
  const results = await Promise.allSettled(
    Array.from({ length: 20 }, () => throttle.attempt('a@example.com', '192.0.2.1')),
  )
  t.equal(results.filter((r) => r.status === 'fulfilled').length, 5)
  t.ok(
    results
      .filter((r) => r.status === 'rejected')
      .every((r) => (r.reason as { code: string }).code === 'KG_LOGIN_THROTTLED'),
  )
}

function throttleOn(counters: Awaited<ReturnType<typeof openIssuerStore>>['throttleCounters']) {
  return new LoginThrottle({ ...settings(), counters, now: Date.now })
}

t.test('parallel guesses cannot slip past the limit (SQLite)', async (t) => {
  const store = await openIssuerStore(join(tempDir(t), 'issuer.db'))
  t.teardown(() => store.close())
  await parallelGuesses(t, store.throttleCounters)
})

t.test('a restart does not reset the counters (SQLite)', async (t) => {
  const dir = tempDir(t)
  const clock = new FakeClock()
  const env = { LOGIN_MAX_FAILURES_PER_ACCOUNT_AND_ADDRESS: '2' }
  const first = await issuerFixture(t, { dir, clock, env })
  for (let i = 0; i < 2; i++) t.equal((await attempt(first.app, 'x@example.com', 'wrong')).statusCode, 401)
  await first.app.close()
  const second = await issuerFixture(t, { dir, clock, env })
  const res = await attempt(second.app, 'x@example.com', 'wrong')
  t.equal(res.statusCode, 429, 'the restarted issuer remembers')
  t.equal(retryAfter(res), 60)
})

const skip = await postgresUnavailable()

t.test('PostgreSQL: instances share the counters', { skip }, async (t) => {
  const db = await testDatabase(t)
  t.test('parallel guesses across two connections pools', async (t) => {
    const a = await openIssuerStore(db.url)
    const b = await openIssuerStore(db.url)
    t.teardown(() => Promise.all([a.close(), b.close()]))
    const throttles = [throttleOn(a.throttleCounters), throttleOn(b.throttleCounters)]
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => throttles[i % 2]!.attempt('p@example.com', '192.0.2.9')),
    )
    t.equal(results.filter((r) => r.status === 'fulfilled').length, 5, 'exactly the limit, across both')
  })
  t.test('failures through one instance throttle the other', async (t) => {
    const clock = new FakeClock()
    const env = { ...postgresEnv(db.url), LOGIN_MAX_FAILURES_PER_ACCOUNT_AND_ADDRESS: '2' }
    const [a, b] = [await issuerFixture(t, { env, clock }), await issuerFixture(t, { env, clock })]
    await register(a.app, 'shared@example.com')
    t.equal((await attempt(a.app, 'shared@example.com', 'wrong')).statusCode, 401)
    t.equal((await attempt(b.app, 'shared@example.com', 'wrong')).statusCode, 401)
    const res = await attempt(a.app, 'shared@example.com', PASSWORD)
    t.equal(res.statusCode, 429, 'the two failures were counted together')
    t.equal((await attempt(b.app, 'shared@example.com', PASSWORD, '198.51.100.5')).statusCode, 200)
  })
})
