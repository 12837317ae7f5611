/**
 * A principal is (issuer, subject): a second trusted issuer whose `sub` equals a keygate user's id names
 * another person, and may grant only what it is trusted for.
 */
import t, { type Test } from 'tap'
import { buildFiles } from '../../../services/files/app.js'
import { loadFilesConfig } from '../../../services/files/config.js'
import { buildOrders } from '../../../services/orders/app.js'
import { loadOrdersConfig } from '../../../services/orders/config.js'
import { buildProfile } from '../../../services/profile/app.js'
import { loadProfileConfig } from '../../../services/profile/config.js'
import { captureLogs } from '../../helpers/logs.js'
import { bearer, httpCall, listenOnFreePort, startServiceWorld } from '../../helpers/services.js'
import { startTokenIssuer } from '../../helpers/token-issuer.js'

async function twoIssuers(t: Test, grants?: Record<string, unknown>) {
  const world = await startServiceWorld(t)
  const second = await startTokenIssuer()
  t.teardown(() => second.close())
  const env = {
    ...world.env,
    TRUSTED_ISSUERS: JSON.stringify([
      { issuer: second.url, audiences: ['keygate-api'], ...(grants ? { grants } : {}) },
    ]),
  }
  return { world, second, env }
}

t.test('colliding subjects of two issuers stay apart at profile, orders and files', async (t) => {
  const { world, second, env } = await twoIssuers(t)
  const profile = buildProfile({ config: loadProfileConfig(env), logger: captureLogs().logger })
  const url = await listenOnFreePort(t, profile)
  await profile.auth.ready()
  const own = await world.token('admin-id', { roles: ['admin', 'user'] })
  const foreign = await second.mint({ sub: 'admin-id', roles: ['admin', 'user'] })

  const json = { 'content-type': 'application/json' }
  let r = await httpCall(`${url}/me`, {
    method: 'PUT',
    headers: { ...bearer(own), ...json },
    body: JSON.stringify({ displayName: 'The Admin' }),
  })
  t.equal(r.status, 200)
  t.equal(r.body.principal, 'admin-id', "keygate's own users keep their plain ids")

  r = await httpCall(`${url}/me`, { headers: bearer(foreign) })
  t.equal(r.status, 200)
  t.equal(r.body.sub, 'admin-id')
  t.equal(r.body.principal, `${second.url}#admin-id`, 'another issuer’s subject is qualified by its iss')
  t.equal(r.body.profile.displayName, null, 'the admin’s profile is not the foreign subject’s')
  t.same(r.body.roles, ['user'], 'a foreign admin role grants nothing by default')

  r = await httpCall(`${url}/me`, {
    method: 'PUT',
    headers: { ...bearer(foreign), ...json },
    body: JSON.stringify({ displayName: 'Mallory' }),
  })
  t.equal(r.status, 200)
  r = await httpCall(`${url}/me`, { headers: bearer(own) })
  t.equal(r.body.profile.displayName, 'The Admin', 'the foreign write did not touch the admin')

  r = await httpCall(`${url}/me`, {
    headers: { 'x-keygate-assertion': world.assertionFor(foreign, 'profile') },
  })
  t.equal(r.body.principal, `${second.url}#admin-id`, 'an assertion keeps the principal of its token')
  t.same(r.body.roles, ['user'], 'and the grants of its token’s issuer')

  const orders = buildOrders({
    config: loadOrdersConfig({ ...env, PROFILE_URL: url }),
    logger: captureLogs().logger,
  })
  const files = buildFiles({ config: loadFilesConfig(env), logger: captureLogs().logger })
  t.teardown(() => orders.close())
  t.teardown(() => files.close())
  await orders.ready()
  await files.ready()
  const order = await orders.inject({
    method: 'POST',
    url: '/orders',
    headers: bearer(own),
    payload: { item: 'secret', quantity: 1 },
  })
  t.equal(order.statusCode, 201, order.body)
  const theirs = await orders.inject({ url: '/orders', headers: bearer(foreign) })
  t.same(theirs.json().orders, [], 'the foreign subject sees none of the admin’s orders')
  const put = await files.inject({
    method: 'PUT',
    url: '/files/notes.txt',
    headers: { ...bearer(own), 'content-type': 'text/plain' },
    payload: 'mine',
  })
  t.ok(put.statusCode < 300, put.body)
  const listed = await files.inject({ url: '/files', headers: bearer(foreign) })
  t.same(listed.json().files, [], 'nor any of the admin’s files')
})

t.test(
  'grants: an issuer may be trusted for a role; an assertion of an untrusted issuer is refused',
  async (t) => {
    const { world, second, env } = await twoIssuers(t, { roles: ['admin'], scopes: ['profile'] })
    const profile = buildProfile({ config: loadProfileConfig(env), logger: captureLogs().logger })
    t.teardown(() => profile.close())
    await profile.ready()
    const foreign = await second.mint({ sub: 'x', roles: ['admin', 'user'], scope: 'profile orders' })
    let r = await profile.inject({ url: '/me', headers: bearer(foreign) })
    t.same(r.json().roles, ['admin'], 'only the granted roles')
    t.same(r.json().scopes, ['profile'], 'only the granted scopes')

    const stranger = await startTokenIssuer()
    t.teardown(() => stranger.close())
    const untrusted = await stranger.mint({ sub: 'x' })
    r = await profile.inject({
      url: '/me',
      headers: { 'x-keygate-assertion': world.assertionFor(untrusted, 'profile') },
    })
    t.equal(r.statusCode, 401, 'the gateway’s word is not enough for an issuer this service does not trust')

    const lookalike = await world.token('https://evil.example#alice')
    r = await profile.inject({ url: '/me', headers: bearer(lookalike) })
    t.equal(r.statusCode, 401, 'an own subject shaped like a qualified principal is refused')
  },
)
