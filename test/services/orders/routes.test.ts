import t from 'tap'
import { bearer } from '../../helpers/services.js'
import { json, startOrdersWithProfile } from './fixtures.js'

t.test('POST /orders records the display name profile holds for the caller', async (t) => {
  const { world, orders, profile, seen } = await startOrdersWithProfile(t)
  const alice = bearer(await world.token('alice'))
  const bob = bearer(await world.token('bob'))
  await profile.inject({
    method: 'PUT',
    url: '/me',
    headers: { ...alice, ...json },
    payload: { displayName: 'Alice Liddell' },
  })

  let r = await orders.inject({
    method: 'POST',
    url: '/orders',
    headers: { ...alice, ...json, 'x-request-id': 'trace-42' },
    payload: { item: 'Tea set', quantity: 2 },
  })
  t.equal(r.statusCode, 201)
  const order = r.json()
  t.match(order, { owner: 'alice', item: 'Tea set', quantity: 2, customerName: 'Alice Liddell' })
  t.match(order.id, /^[0-9a-f-]{36}$/)
  t.match(order.createdAt, /^\d{4}-\d\d-\d\dT/)
  t.same(Object.keys(order).sort(), ['createdAt', 'customerName', 'id', 'item', 'owner', 'quantity'])

  t.equal(seen.length, 1, 'profile was called once')
  t.equal(seen[0]!.sub, 'alice', "profile saw the original user, verified from the user's own token")
  t.equal(seen[0]!.source, 'token')
  t.equal(seen[0]!.headers['x-request-id'], 'trace-42', 'the request id travels with the call')
  t.equal(seen[0]!.headers['x-keygate-assertion'], undefined, 'no assertion is forwarded')

  r = await orders.inject({
    method: 'POST',
    url: '/orders',
    headers: { ...bob, ...json },
    payload: { item: 'Hat', quantity: 1 },
  })
  t.equal(r.statusCode, 201)
  t.match(r.json(), { owner: 'bob', customerName: null }, 'bob has no display name')
  t.equal(seen[1]!.sub, 'bob')
})

t.test(
  'GET /orders lists only the caller’s orders, newest first; GET /orders/:id only the caller’s',
  async (t) => {
    const { world, orders } = await startOrdersWithProfile(t)
    const alice = bearer(await world.token('alice'))
    const bob = bearer(await world.token('bob'))
    const create = async (headers: Record<string, string>, item: string) =>
      (
        await orders.inject({
          method: 'POST',
          url: '/orders',
          headers: { ...headers, ...json },
          payload: { item, quantity: 1 },
        })
      ).json()
    const first = await create(alice, 'first')
    const second = await create(alice, 'second')
    const third = await create(alice, 'third')
    const bobs = await create(bob, 'bob’s')

    let r = await orders.inject({ url: '/orders', headers: alice })
    t.equal(r.statusCode, 200)
    t.same(
      r.json().orders.map((o: { id: string }) => o.id),
      [third.id, second.id, first.id],
      'newest first, even within one millisecond',
    )
    r = await orders.inject({ url: '/orders', headers: bob })
    t.same(
      r.json().orders.map((o: { id: string }) => o.id),
      [bobs.id],
    )
    r = await orders.inject({ url: '/orders', headers: bearer(await world.token('carol')) })
    t.same(r.json(), { orders: [] })

    r = await orders.inject({ url: `/orders/${first.id}`, headers: alice })
    t.equal(r.statusCode, 200)
    t.same(r.json(), first)

    const theirs = await orders.inject({ url: `/orders/${first.id}`, headers: bob })
    t.equal(theirs.statusCode, 404, "another user's order")
    t.equal(theirs.json().code, 'KG_NOT_FOUND')
    const missing = await orders.inject({ url: `/orders/${crypto.randomUUID()}`, headers: bob })
    t.same(theirs.json(), missing.json(), 'the same answer as for a missing order')

    r = await orders.inject({ url: '/orders/not-an-id', headers: alice })
    t.equal(r.statusCode, 400, 'a malformed id')
  },
)

t.test('POST /orders refuses bad input with 400 and creates nothing', async (t) => {
  const { world, orders, seen } = await startOrdersWithProfile(t)
  const alice = { ...bearer(await world.token('alice')), ...json }
  const cases: Array<[string, string | object, string]> = [
    ['not JSON', '{"item":', 'KG_MALFORMED_JSON'],
    ['an unknown field', { item: 'a', quantity: 1, owner: 'bob' }, 'KG_INVALID_REQUEST'],
    ['a customerName', { item: 'a', quantity: 1, customerName: 'Admin' }, 'KG_INVALID_REQUEST'],
    ['no item', { quantity: 1 }, 'KG_INVALID_REQUEST'],
    ['no quantity', { item: 'a' }, 'KG_INVALID_REQUEST'],
    ['an empty item', { item: '', quantity: 1 }, 'KG_INVALID_REQUEST'],
    ['a blank item', { item: '   ', quantity: 1 }, 'KG_INVALID_REQUEST'],
    ['101 characters', { item: 'x'.repeat(101), quantity: 1 }, 'KG_INVALID_REQUEST'],
    ['a control character', { item: 'a\nb', quantity: 1 }, 'KG_INVALID_REQUEST'],
    ['quantity 0', { item: 'a', quantity: 0 }, 'KG_INVALID_REQUEST'],
    ['quantity 1001', { item: 'a', quantity: 1001 }, 'KG_INVALID_REQUEST'],
    ['a fractional quantity', { item: 'a', quantity: 1.5 }, 'KG_INVALID_REQUEST'],
    ['a quantity as text', { item: 'a', quantity: '2' }, 'KG_INVALID_REQUEST'],
  ]
  for (const [what, payload, code] of cases) {
    const r = await orders.inject({
      method: 'POST',
      url: '/orders',
      headers: alice,
      payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
    })
    t.equal(r.statusCode, 400, what)
    t.equal(r.json().code, code, what)
  }
  const ok = await orders.inject({
    method: 'POST',
    url: '/orders',
    headers: alice,
    payload: { item: 'x'.repeat(100), quantity: 1000 },
  })
  t.equal(ok.statusCode, 201, 'the limits themselves are fine')
  t.equal((await orders.inject({ url: '/orders', headers: alice })).json().orders.length, 1)
  t.equal(seen.length, 1, 'profile is not asked for refused requests')
})
