import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { buildProfile } from '../../../services/profile/app.js'
import { loadProfileConfig } from '../../../services/profile/config.js'
import { bearer, type ServiceWorld, startServiceWorld } from '../../helpers/services.js'
import { captureLogs } from '../../helpers/logs.js'

async function build(t: Test, world: ServiceWorld): Promise<FastifyInstance> {
  const app = buildProfile({ config: loadProfileConfig(world.env), logger: captureLogs('profile').logger })
  t.teardown(() => app.close())
  await app.ready()
  await app.auth.ready()
  return app
}

const json = { 'content-type': 'application/json' }

t.test('GET /me shows the verified caller and an empty profile at first', async (t) => {
  const world = await startServiceWorld(t)
  const app = await build(t, world)
  const token = await world.token('alice', { roles: ['user', 'admin'], scope: 'profile orders' })
  const r = await app.inject({ url: '/me', headers: bearer(token) })
  t.equal(r.statusCode, 200)
  t.same(r.json(), {
    sub: 'alice',
    principal: 'alice',
    roles: ['user', 'admin'],
    scopes: ['profile', 'orders'],
    profile: { displayName: null, updatedAt: null },
  })
})

t.test('PUT /me stores the display name per subject', async (t) => {
  const world = await startServiceWorld(t)
  const app = await build(t, world)
  const alice = bearer(await world.token('alice'))
  const bob = bearer(await world.token('bob'))

  let r = await app.inject({
    method: 'PUT',
    url: '/me',
    headers: { ...alice, ...json },
    payload: { displayName: '  Alice Liddell ' },
  })
  t.equal(r.statusCode, 200)
  t.equal(r.json().sub, 'alice')
  t.equal(r.json().profile.displayName, 'Alice Liddell')
  t.match(r.json().profile.updatedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)

  r = await app.inject({ url: '/me', headers: alice })
  t.equal(r.json().profile.displayName, 'Alice Liddell')
  r = await app.inject({ url: '/me', headers: bob })
  t.same(r.json().profile, { displayName: null, updatedAt: null }, "bob does not see alice's profile")

  r = await app.inject({
    method: 'PUT',
    url: '/me',
    headers: { ...alice, ...json },
    payload: { displayName: 'Alice' },
  })
  t.equal(r.json().profile.displayName, 'Alice', 'a second PUT replaces the name')
})

t.test('PUT /me refuses bad input with 400', async (t) => {
  const world = await startServiceWorld(t)
  const app = await build(t, world)
  const alice = { ...bearer(await world.token('alice')), ...json }
  const cases: Array<[string, string | object, string]> = [
    ['not JSON', '{"displayName":', 'KG_MALFORMED_JSON'],
    ['an empty body', '', 'KG_MALFORMED_JSON'],
    ['an unknown field', { displayName: 'A', admin: true }, 'KG_INVALID_REQUEST'],
    ['no displayName', {}, 'KG_INVALID_REQUEST'],
    ['a number', { displayName: 42 }, 'KG_INVALID_REQUEST'],
    ['null', { displayName: null }, 'KG_INVALID_REQUEST'],
    ['blank', { displayName: '   ' }, 'KG_INVALID_REQUEST'],
    ['65 characters', { displayName: 'x'.repeat(65) }, 'KG_INVALID_REQUEST'],
    ['a very long value', { displayName: ' '.repeat(1000) + 'x' }, 'KG_INVALID_REQUEST'],
    ['a newline', { displayName: 'Alice\nAdmin' }, 'KG_INVALID_REQUEST'],
    ['a bidi override', { displayName: 'Alice\u202E' }, 'KG_INVALID_REQUEST'],
    ['an array body', [{ displayName: 'A' }], 'KG_INVALID_REQUEST'],
  ]
  for (const [what, payload, code] of cases) {
    const r = await app.inject({
      method: 'PUT',
      url: '/me',
      headers: alice,
      payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
    })
    t.equal(r.statusCode, 400, what)
    t.equal(r.json().code, code, what)
  }
  const r = await app.inject({
    method: 'PUT',
    url: '/me',
    headers: { ...alice, 'content-type': 'application/xml' },
    payload: '<displayName/>',
  })
  t.equal(r.statusCode, 415, 'only JSON bodies')
  t.same(
    (await app.inject({ url: '/me', headers: alice })).json().profile.displayName,
    null,
    'nothing stored',
  )
})
