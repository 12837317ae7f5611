/**
 * The throttles' counters in Redis (REDIS_URL): two issuer instances with stores of their own but one Redis
 * see one login throttle, one registration limit and one e-mail code limit; failures aimed at someone else
 * still do not lock them out; updates from two processes on one counter lose nothing; with Redis
 * unreachable the throttle counts in the store. Skipped with a message without Redis, unless
 * KEYGATE_REQUIRE_REDIS=1.
 */
import { once } from 'node:events'
import { type AddressInfo, createServer, type Socket } from 'node:net'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { RedisThrottleCounters } from '../../../services/issuer/redis-throttle-counters.js'
import type { ThrottleCounters } from '../../../services/issuer/store/types.js'
import { captureLogs } from '../../helpers/logs.js'
import { redisUnavailable, TEST_REDIS_URL, testKeyPrefix } from '../../helpers/redis.js'
import { FakeClock, issuerFixture, PASSWORD, register } from './fixtures.js'

type App = Awaited<ReturnType<typeof issuerFixture>>['app']

const skip = await redisUnavailable()

const attempt = (app: App, email: string, password: string, remoteAddress = '198.51.100.1') =>
  app.inject({ method: 'POST', url: '/auth/login', remoteAddress, payload: { email, password } })

t.test('two issuers on one Redis see one login throttle', { skip }, async (t) => {
  const clock = new FakeClock()
  const env = {
    REDIS_URL: TEST_REDIS_URL,
    REDIS_KEY_PREFIX: testKeyPrefix(t),
    LOGIN_MAX_FAILURES_PER_ACCOUNT_AND_ADDRESS: '4',
    LOGIN_BACKOFF: '1m',
  }
  const { app: a } = await issuerFixture(t, { env, clock })
  const { app: b } = await issuerFixture(t, { env, clock })
  await register(a, 'victim@example.com')
  await register(b, 'victim@example.com')

  const answers: number[] = []
  for (const app of [a, b, a, b]) answers.push((await attempt(app, 'victim@example.com', 'wrong')).statusCode)
  t.same(answers, [401, 401, 401, 401], 'four failures, two on each instance')
  for (const [app, name] of [
    [a, 'first'],
    [b, 'second'],
  ] as const) {
    const res = await attempt(app, 'victim@example.com', PASSWORD)
    t.equal(res.statusCode, 429, `the ${name} instance makes this address wait`)
    t.equal(res.json().code, 'KG_LOGIN_THROTTLED')
    t.equal(res.headers['retry-after'], '60')
  }
  t.equal(
    (await attempt(b, 'victim@example.com', PASSWORD, '198.51.100.2')).statusCode,
    200,
    'the owner, from another address, is not locked out',
  )
  clock.advance(60_000)
  t.equal((await attempt(a, 'victim@example.com', PASSWORD)).statusCode, 200, 'after the back-off')

  const alone = await issuerFixture(t, { env: { ...env, REDIS_KEY_PREFIX: testKeyPrefix(t) }, clock })
  await register(alone.app, 'other@example.com')
  for (let i = 0; i < 3; i++) await attempt(a, 'other@example.com', 'wrong')
  t.equal(
    (await attempt(alone.app, 'other@example.com', 'wrong')).statusCode,
    401,
    'another key prefix is another deployment: its counters are its own',
  )
})

t.test('registrations and e-mail code requests are limited across both', { skip }, async (t) => {
  const env = {
    REDIS_URL: TEST_REDIS_URL,
    REDIS_KEY_PREFIX: testKeyPrefix(t),
    REGISTRATION_RATE_LIMIT: '2/1h',
    LOGIN_METHODS: 'password,email-code',
    EMAIL_CODE_RATE_LIMIT_PER_EMAIL: '2/1h',
  }
  const { app: a } = await issuerFixture(t, { env })
  const { app: b } = await issuerFixture(t, { env })
  const registerFrom = (app: App, email: string) =>
    app.inject({
      method: 'POST',
      url: '/auth/register',
      remoteAddress: '203.0.113.9',
      payload: { email, password: PASSWORD },
    })
  t.equal((await registerFrom(a, 'one@example.com')).statusCode, 202)
  t.equal((await registerFrom(b, 'two@example.com')).statusCode, 202)
  const third = await registerFrom(a, 'three@example.com')
  t.equal(third.statusCode, 429, 'the third registration from one address, on either instance')
  t.equal(third.json().code, 'KG_RATE_LIMITED')

  const requestCode = (app: App) =>
    app.inject({ method: 'POST', url: '/auth/email-code', payload: { email: 'one@example.com' } })
  t.equal((await requestCode(a)).statusCode, 202)
  t.equal((await requestCode(b)).statusCode, 202)
  t.equal((await requestCode(a)).statusCode, 429, 'the third code for one e-mail')
})

t.test('updates from two processes on one counter lose nothing', { skip }, async (t) => {
  const keyPrefix = testKeyPrefix(t)
  const refused: ThrottleCounters = {
    update: () => Promise.reject(new Error('the store must not be used while Redis answers')),
    prune: async () => 0,
  }
  const clients = [new Redis(TEST_REDIS_URL), new Redis(TEST_REDIS_URL)]
  t.teardown(() => clients.forEach((c) => c.disconnect()))
  await Promise.all(clients.map((c) => c.ping()))
  const [first, second] = clients.map(
    (redis) => new RedisThrottleCounters({ redis, keyPrefix, fallback: refused, log: captureLogs().logger }),
  )
  const now = Date.now()
  const increment = (counters: RedisThrottleCounters) =>
    counters.update(['shared', 'a', 'b'], now, (current) => {
      const shared = current.get('shared')!
      const next = { count: shared.count + 1, blockedUntil: 0, expiresAt: now + 60_000 }
      return { writes: new Map([['shared', next]]), result: next.count }
    })
  const results = await Promise.all(
    Array.from({ length: 60 }, (_, i) => increment(i % 2 === 0 ? first! : second!)),
  )
  t.same(
    [...results].sort((x, y) => x - y),
    Array.from({ length: 60 }, (_, i) => i + 1),
    'every increment saw the one before it',
  )
  const ttl = await clients[0]!.pttl(`${keyPrefix}throttle:shared`)
  t.ok(ttl > 0 && ttl <= 60_000, 'the counter expires a window after its last write')
  t.equal(
    await first!.update(['shared'], now + 60_000, (current) => ({
      writes: new Map(),
      result: current.get('shared')!.count,
    })),
    0,
    'expired at its expiresAt, whatever Redis still holds',
  )
})

t.test('Redis unreachable: the throttle counts in the store, no 500', async (t) => {
  const { app, logs } = await issuerFixture(t, {
    env: { REDIS_URL: 'redis://127.0.0.1:1', LOGIN_MAX_FAILURES_PER_ACCOUNT_AND_ADDRESS: '2' },
  })
  await register(app, 'ada@example.com')
  t.same(
    [
      (await attempt(app, 'ada@example.com', 'wrong')).statusCode,
      (await attempt(app, 'ada@example.com', 'wrong')).statusCode,
      (await attempt(app, 'ada@example.com', PASSWORD)).statusCode,
    ],
    [401, 401, 429],
  )
  t.equal(logs.find('Redis unreachable: throttles count in the store').length, 1, 'said once')
})

/**
 * A "Redis" that answers what the client sends while connecting (CLIENT SETINFO: OK, INFO: the ready check)
 * and then never answers again.
 */
async function stalledRedis(t: Test): Promise<string> {
  const sockets = new Set<Socket>()
  const server = createServer((socket) => {
    sockets.add(socket)
    let ready = false
    socket.on('data', (chunk: Buffer) => {
      for (const [, name] of chunk.toString('latin1').matchAll(/\*\d+\r\n\$\d+\r\n([A-Za-z]+)\r\n/g)) {
        if (ready) return
        if (name!.toUpperCase() === 'INFO') {
          ready = true
          socket.write('$0\r\n\r\n')
        } else {
          socket.write('+OK\r\n')
        }
      }
    })
    socket.on('error', () => {})
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => {
    for (const socket of sockets) socket.destroy()
    server.close()
  })
  return `redis://127.0.0.1:${(server.address() as AddressInfo).port}`
}

t.test('Redis connected but stalled: commands time out, the store counts', async (t) => {
  const { app, logs } = await issuerFixture(t, {
    env: { REDIS_URL: await stalledRedis(t), LOGIN_MAX_FAILURES_PER_ACCOUNT_AND_ADDRESS: '2' },
  })
  await register(app, 'bea@example.com')
  t.same(
    [
      (await attempt(app, 'bea@example.com', 'wrong')).statusCode,
      (await attempt(app, 'bea@example.com', 'wrong')).statusCode,
      (await attempt(app, 'bea@example.com', PASSWORD)).statusCode,
    ],
    [401, 401, 429],
  )
  t.equal(logs.find('Redis command failed: throttles count in the store').length, 1, 'said once')
})
