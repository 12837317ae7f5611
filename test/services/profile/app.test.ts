import { existsSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { buildProfile } from '../../../services/profile/app.js'
import { loadProfileConfig } from '../../../services/profile/config.js'
import { startProfile } from '../../../services/profile/server.js'
import { captureLogs } from '../../helpers/logs.js'
import { bearer, httpCall, listenOnFreePort, startServiceWorld } from '../../helpers/services.js'

t.test('identity: a token or an assertion for profile; nothing else', async (t) => {
  const world = await startServiceWorld(t)
  const logs = captureLogs('profile')
  const app = buildProfile({ config: loadProfileConfig(world.env), logger: logs.logger })
  const url = await listenOnFreePort(t, app)
  await app.auth.ready()
  const token = await world.token('alice')

  let r = await httpCall(`${url}/me`, { headers: bearer(token) })
  t.equal(r.status, 200, 'a valid access token, called directly')
  t.equal(r.body.sub, 'alice')

  r = await httpCall(`${url}/me`, {
    headers: { 'x-keygate-assertion': world.assertionFor(token, 'profile') },
  })
  t.equal(r.status, 200, 'a gateway assertion alone')
  t.equal(r.body.sub, 'alice')

  r = await httpCall(`${url}/me`, { headers: { 'x-keygate-assertion': world.assertionFor(token, 'orders') } })
  t.equal(r.status, 401, 'an assertion minted for another service')
  t.equal(r.body.code, 'KG_TOKEN_AUDIENCE_INVALID')

  r = await httpCall(`${url}/me`)
  t.equal(r.status, 401, 'no identity')
  t.equal(r.body.code, 'KG_TOKEN_MISSING')
  t.equal(r.headers['www-authenticate'], 'Bearer realm="keygate"')

  r = await httpCall(`${url}/me`, {
    headers: { 'x-user-id': 'alice', 'x-keygate-subject': 'alice', 'x-keygate-roles': 'admin' },
  })
  t.equal(r.status, 401, 'forged identity headers only')
  t.equal(r.body.code, 'KG_TOKEN_MISSING')

  r = await httpCall(`${url}/me`, {
    method: 'PUT',
    headers: { 'x-keygate-subject': 'alice', 'content-type': 'application/json' },
    body: JSON.stringify({ displayName: 'Mallory' }),
  })
  t.equal(r.status, 401, 'no write with forged headers either')

  const other = await world.issuer.mint({ sub: 'alice', aud: 'someone-else' })
  r = await httpCall(`${url}/me`, { headers: bearer(other) })
  t.equal(r.status, 401, 'a token for another audience')
  t.equal(logs.find(token).length, 0, 'no token in the logs')
})

t.test('operations: healthz, readyz with keys and store, metrics', async (t) => {
  const world = await startServiceWorld(t)
  const app = buildProfile({ config: loadProfileConfig(world.env), logger: captureLogs().logger })
  t.teardown(() => app.close())
  await app.ready()
  await app.auth.ready()
  t.equal((await app.inject('/healthz')).statusCode, 200)
  const ready = await app.operations.inject('/readyz')
  t.equal(ready.statusCode, 200)
  t.same(ready.json().checks, { keys: true, 'refused-keys': true, store: true })
  const metrics = await app.operations.inject('/metrics')
  t.match(metrics.body, /component="profile"/)
})

t.test('profiles survive a restart on the same DATA_DIR', async (t) => {
  const world = await startServiceWorld(t)
  const config = loadProfileConfig(world.env)
  const alice = { ...bearer(await world.token('alice')), 'content-type': 'application/json' }
  let app = buildProfile({ config, logger: captureLogs().logger })
  await app.ready()
  await app.inject({ method: 'PUT', url: '/me', headers: alice, payload: { displayName: 'Alice' } })
  await app.close()

  app = buildProfile({ config, logger: captureLogs().logger })
  t.teardown(() => app.close())
  const r = await app.inject({ url: '/me', headers: alice })
  t.equal(r.json().profile.displayName, 'Alice')
})

t.test('the store: ${DATA_DIR}/profile.db, or PROFILE_DATABASE_URL', async (t) => {
  const world = await startServiceWorld(t)
  let app = buildProfile({ config: loadProfileConfig(world.env), logger: captureLogs().logger })
  await app.ready()
  await app.close()
  t.ok(existsSync(join(world.dir, 'profile.db')))
  const elsewhere = join(world.dir, 'elsewhere', 'p.db')
  app = buildProfile({
    config: loadProfileConfig({ ...world.env, PROFILE_DATABASE_URL: elsewhere }),
    logger: captureLogs().logger,
  })
  await app.ready()
  await app.close()
  t.ok(existsSync(elsewhere))
})

t.test('startProfile listens on PROFILE_PORT and fails clearly when the port is taken', async (t) => {
  const world = await startServiceWorld(t)
  const app = await startProfile(loadProfileConfig({ ...world.env, PROFILE_PORT: '0', LOG_LEVEL: 'silent' }))
  t.teardown(() => app.close())
  const port = (app.server.address() as { port: number }).port
  t.equal((await httpCall(`http://127.0.0.1:${port}/healthz`)).status, 200)
  await t.rejects(
    startProfile(loadProfileConfig({ ...world.env, PROFILE_PORT: String(port), LOG_LEVEL: 'silent' })),
    { code: 'EADDRINUSE' },
  )
})
