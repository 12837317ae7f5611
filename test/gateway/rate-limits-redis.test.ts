/**
 * Rate limits shared through Redis: two gateways on one Redis enforce one limit between them, per subject
 * and per address; with Redis unreachable, requests pass uncounted and the log says so once. Skipped with a
 * message without Redis, unless KEYGATE_REQUIRE_REDIS=1.
 */
import t from 'tap'
import { request } from 'undici'
import { redisUnavailable, TEST_REDIS_URL, testKeyPrefix } from '../helpers/redis.js'
import { startEchoGateway } from './helpers/servers.js'

const skip = await redisUnavailable()

const ROUTES = [
  {
    prefix: '/public',
    upstream: 'up',
    auth: { mode: 'none' as const },
    rateLimit: { max: 3, windowMs: 3_600_000 },
  },
  {
    prefix: '/private',
    upstream: 'up',
    auth: { mode: 'required' as const },
    rateLimit: { max: 2, windowMs: 3_600_000 },
  },
]

async function status(url: string, token?: string): Promise<number> {
  const res = await request(url, { headers: token ? { authorization: `Bearer ${token}` } : {} })
  await res.body.dump()
  return res.statusCode
}

t.test('two gateways on one Redis enforce one limit between them', { skip }, async (t) => {
  const env = { REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: testKeyPrefix(t) }
  const first = await startEchoGateway(t, { routes: ROUTES, env })
  const second = await startEchoGateway(t, { routes: ROUTES, env, issuer: first.issuer })
  const [a, b] = [first.gw.url, second.gw.url]

  t.same(
    [await status(`${a}/public/1`), await status(`${b}/public/2`), await status(`${a}/public/3`)],
    [200, 200, 200],
  )
  t.equal(
    await status(`${b}/public/4`),
    429,
    'the fourth request from one address is refused, whichever gateway',
  )
  t.equal(await status(`${a}/public/5`), 429)

  const alice = await first.issuer.mint({ sub: 'alice' })
  const bob = await first.issuer.mint({ sub: 'bob' })
  t.equal(await status(`${a}/private/1`, alice), 200)
  t.equal(await status(`${b}/private/2`, alice), 200)
  t.equal(await status(`${a}/private/3`, alice), 429, "alice's third, on the other gateway, is refused")
  t.equal(await status(`${b}/private/1`, bob), 200, 'bob counts apart')
})

t.test('gateways with different key prefixes count apart', { skip }, async (t) => {
  const first = await startEchoGateway(t, {
    routes: ROUTES,
    env: { REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: testKeyPrefix(t) },
  })
  const second = await startEchoGateway(t, {
    routes: ROUTES,
    env: { REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: testKeyPrefix(t) },
    issuer: first.issuer,
  })
  for (let i = 0; i < 3; i++) t.equal(await status(`${first.gw.url}/public/${i}`), 200)
  t.equal(await status(`${first.gw.url}/public/x`), 429)
  t.equal(await status(`${second.gw.url}/public/x`), 200, 'another deployment on the same Redis')
})

t.test('Redis unreachable: requests pass uncounted', async (t) => {
  const { gw } = await startEchoGateway(t, { routes: ROUTES, env: { REDIS_URL: 'redis://127.0.0.1:1' } })
  for (let i = 0; i < 5; i++) t.equal(await status(`${gw.url}/public/${i}`), 200)
})
