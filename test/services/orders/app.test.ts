import { existsSync } from 'node:fs'
import { join } from 'node:path'
import Fastify from 'fastify'
import t from 'tap'
import { buildOrders } from '../../../services/orders/app.js'
import { loadOrdersConfig } from '../../../services/orders/config.js'
import { startOrders } from '../../../services/orders/server.js'
import { captureLogs } from '../../helpers/logs.js'
import { bearer, httpCall, listenOnFreePort, startServiceWorld } from '../../helpers/services.js'
import { json, startOrdersWithProfile } from './fixtures.js'

t.test('identity at orders: token, assertion for orders, nothing else', async (t) => {
  const { world, orders, seen, logs } = await startOrdersWithProfile(t)
  const url = await listenOnFreePort(t, orders)
  const token = await world.token('alice')
  const forOrders = world.assertionFor(token, 'orders')

  let r = await httpCall(`${url}/orders`, { headers: bearer(token) })
  t.equal(r.status, 200, 'a valid access token, called directly')

  r = await httpCall(`${url}/orders`, { headers: { 'x-keygate-assertion': forOrders } })
  t.equal(r.status, 200, 'a gateway assertion for orders alone')

  r = await httpCall(`${url}/orders`, {
    headers: { 'x-keygate-assertion': world.assertionFor(token, 'profile') },
  })
  t.equal(r.status, 401, 'an assertion minted for another service')

  const forged: Array<Record<string, string>> = [
    {},
    { 'x-user-id': 'alice' },
    { 'x-keygate-subject': 'alice', 'x-keygate-roles': 'admin' },
  ]
  for (const headers of forged) {
    r = await httpCall(`${url}/orders`, { headers })
    t.equal(r.status, 401, `GET with ${JSON.stringify(headers)}`)
    t.equal(r.body.code, 'KG_TOKEN_MISSING')
    r = await httpCall(`${url}/orders`, {
      method: 'POST',
      headers: { ...headers, ...json },
      body: JSON.stringify({ item: 'x', quantity: 1 }),
    })
    t.equal(r.status, 401, `POST with ${JSON.stringify(headers)}`)
  }

  // Through the gateway: the token relayed beside the gateway's assertion.
  r = await httpCall(`${url}/orders`, {
    method: 'POST',
    headers: { ...bearer(token), 'x-keygate-assertion': forOrders, ...json },
    body: JSON.stringify({ item: 'via gateway', quantity: 1 }),
  })
  t.equal(r.status, 201, 'token and assertion together')
  t.equal(seen.at(-1)!.sub, 'alice')
  t.equal(seen.at(-1)!.headers['x-keygate-assertion'], undefined, "orders' assertion is not passed on")

  // Only an assertion: orders holds nothing profile could verify, so it does not call profile at all.
  const before = seen.length
  r = await httpCall(`${url}/orders`, {
    method: 'POST',
    headers: { 'x-keygate-assertion': forOrders, ...json },
    body: JSON.stringify({ item: 'assertion only', quantity: 1 }),
  })
  t.equal(r.status, 502)
  t.same(r.body, {
    error: 'bad_gateway',
    code: 'KG_PROFILE_UNAVAILABLE',
    message: 'The profile service could not be reached on the caller’s behalf',
    reason: 'no_relayable_identity',
  })
  t.equal(seen.length, before, 'profile was not called')
  r = await httpCall(`${url}/orders`, { headers: bearer(token) })
  t.same(
    r.body.orders.map((o: { item: string }) => o.item),
    ['via gateway'],
    'no order was created',
  )

  for (const secret of [token, forOrders]) {
    t.equal(logs.orders.find(secret).length, 0, 'no credential in orders’ logs')
    t.equal(logs.profile.find(secret).length, 0, 'no credential in profile’s logs')
  }
})

t.test('profile refuses what orders must not send: the orders assertion, plain headers', async (t) => {
  const { world, profileUrl } = await startOrdersWithProfile(t)
  const token = await world.token('alice')
  // What a careless relay would forward: the assertion minted for orders, or headers naming the user.
  let r = await httpCall(`${profileUrl}/me`, {
    headers: { 'x-keygate-assertion': world.assertionFor(token, 'orders'), 'x-request-id': 'r1' },
  })
  t.equal(r.status, 401, 'an assertion bound to orders')
  r = await httpCall(`${profileUrl}/me`, { headers: { 'x-keygate-subject': 'alice', 'x-user-id': 'alice' } })
  t.equal(r.status, 401, 'plain identity headers')
  t.equal(r.body.code, 'KG_TOKEN_MISSING')
  r = await httpCall(`${profileUrl}/me`, { headers: bearer(token) })
  t.equal(r.status, 200, "the user's own token, as orders relays it")
})

t.test('profile down or slow: 502 within the timeout, no order created', async (t) => {
  const world = await startServiceWorld(t)
  const slow = Fastify({ forceCloseConnections: true })
  slow.get('/me', () => new Promise(() => {}))
  const slowUrl = await listenOnFreePort(t, slow)
  const alice = { ...bearer(await world.token('alice')), ...json }

  for (const [what, profileUrl, reason] of [
    ['down', 'http://127.0.0.1:1', 'unreachable'],
    ['slow', slowUrl, 'timeout'],
  ] as const) {
    const orders = buildOrders({
      config: loadOrdersConfig({ ...world.env, PROFILE_URL: profileUrl, ORDERS_PROFILE_TIMEOUT: '300ms' }),
      logger: captureLogs().logger,
    })
    t.teardown(() => orders.close())
    const started = Date.now()
    const r = await orders.inject({
      method: 'POST',
      url: '/orders',
      headers: alice,
      payload: { item: 'x', quantity: 1 },
    })
    t.equal(r.statusCode, 502, what)
    t.equal(r.json().code, 'KG_PROFILE_UNAVAILABLE')
    t.equal(r.json().reason, reason)
    t.ok(Date.now() - started < 1_500, `${what}: answered within the timeout`)
    t.same(
      (await orders.inject({ url: '/orders', headers: alice })).json(),
      { orders: [] },
      'nothing created',
    )
  }
})

t.test('readiness waits for profile, then does not depend on it', async (t) => {
  const world = await startServiceWorld(t)
  const profileStandIn = Fastify({ forceCloseConnections: true })
  profileStandIn.get('/healthz', async () => ({ status: 'ok' }))
  await profileStandIn.listen({ host: '127.0.0.1', port: 0 })
  const port = (profileStandIn.server.address() as { port: number }).port
  await profileStandIn.close()

  const orders = buildOrders({
    config: loadOrdersConfig({ ...world.env, PROFILE_URL: `http://127.0.0.1:${port}` }),
    logger: captureLogs().logger,
  })
  t.teardown(() => orders.close())
  await orders.ready()
  await orders.auth.ready()
  let r = await orders.operations.inject('/readyz')
  t.equal(r.statusCode, 503, 'profile not up yet')
  t.equal(r.json().checks.profile, 'profile is not reachable yet')

  const again = Fastify({ forceCloseConnections: true })
  again.get('/healthz', async () => ({ status: 'ok' }))
  await again.listen({ host: '127.0.0.1', port })
  r = await orders.operations.inject('/readyz')
  t.equal(r.statusCode, 200)
  t.same(r.json().checks, { keys: true, 'refused-keys': true, store: true, profile: true })
  await again.close()
  t.equal(
    (await orders.operations.inject('/readyz')).statusCode,
    200,
    'a later profile outage leaves orders ready',
  )
})

t.test('orders survive a restart on the same DATA_DIR', async (t) => {
  const world = await startServiceWorld(t)
  const fixture = await startOrdersWithProfile(t, {}, world)
  const alice = bearer(await world.token('alice'))
  const created = (
    await fixture.orders.inject({
      method: 'POST',
      url: '/orders',
      headers: { ...alice, ...json },
      payload: { item: 'kept', quantity: 3 },
    })
  ).json()
  await fixture.orders.close()
  t.ok(existsSync(join(world.dir, 'orders.db')), 'kept in ${DATA_DIR}/orders.db')

  const orders = buildOrders({
    config: loadOrdersConfig({ ...world.env, PROFILE_URL: fixture.profileUrl }),
    logger: captureLogs().logger,
  })
  t.teardown(() => orders.close())
  const r = await orders.inject({ url: `/orders/${created.id}`, headers: alice })
  t.equal(r.statusCode, 200)
  t.same(r.json(), created)
})

t.test('startOrders listens on ORDERS_PORT', async (t) => {
  const world = await startServiceWorld(t)
  const app = await startOrders(loadOrdersConfig({ ...world.env, ORDERS_PORT: '0', LOG_LEVEL: 'silent' }))
  t.teardown(() => app.close())
  const port = (app.server.address() as { port: number }).port
  t.equal((await httpCall(`http://127.0.0.1:${port}/healthz`)).status, 200)
})
