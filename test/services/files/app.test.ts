import { existsSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { buildFiles } from '../../../services/files/app.js'
import { loadFilesConfig } from '../../../services/files/config.js'
import { startFiles as startFilesServer } from '../../../services/files/server.js'
import { buildProfile } from '../../../services/profile/app.js'
import { loadProfileConfig } from '../../../services/profile/config.js'
import { captureLogs } from '../../helpers/logs.js'
import { bearer, FakeClock, httpCall, listenOnFreePort, startServiceWorld } from '../../helpers/services.js'
import { startFiles } from './fixtures.js'

t.test('identity at files: token, assertion for files, nothing else', async (t) => {
  const { world, app, upload } = await startFiles(t)
  const url = await listenOnFreePort(t, app)
  const token = await world.token('alice')
  await upload(token, 'a.txt', 'A')

  let r = await httpCall(`${url}/files`, { headers: bearer(token) })
  t.equal(r.status, 200, 'a valid access token, called directly')
  r = await httpCall(`${url}/files`, {
    headers: { 'x-keygate-assertion': world.assertionFor(token, 'files') },
  })
  t.equal(r.status, 200, 'a gateway assertion for files alone')
  t.equal(r.body.files.length, 1)
  r = await httpCall(`${url}/files/b.txt`, {
    method: 'PUT',
    headers: { 'x-keygate-assertion': world.assertionFor(token, 'files') },
    body: 'B',
  })
  t.equal(r.status, 201, 'uploads with an assertion too')
  r = await httpCall(`${url}/files`, {
    headers: { 'x-keygate-assertion': world.assertionFor(token, 'orders') },
  })
  t.equal(r.status, 401, 'an assertion minted for another service')

  const forged = { 'x-user-id': 'alice', 'x-keygate-subject': 'alice' }
  for (const [method, path] of [
    ['GET', '/files'],
    ['PUT', '/files/c.txt'],
    ['POST', '/files/a.txt/link'],
  ] as const) {
    r = await httpCall(`${url}${path}`, {
      method,
      headers: forged,
      ...(method === 'PUT' ? { body: 'x' } : {}),
    })
    t.equal(r.status, 401, `${method} ${path} with forged identity headers`)
    t.equal(r.body.code, 'KG_TOKEN_MISSING')
  }
})

t.test('a download token is refused as an access token elsewhere too', async (t) => {
  const { world, upload, link } = await startFiles(t)
  const alice = await world.token('alice')
  await upload(alice, 'a.txt', 'A')
  const token = await link(alice, 'a.txt')
  const profile = buildProfile({ config: loadProfileConfig(world.env), logger: captureLogs().logger })
  t.teardown(() => profile.close())
  const r = await profile.inject({ url: '/me', headers: bearer(token) })
  t.equal(r.statusCode, 401)
  t.equal(r.json().code, 'KG_TOKEN_ISSUER_UNKNOWN')
})

t.test('files and links survive a restart on the same DATA_DIR', async (t) => {
  const world = await startServiceWorld(t)
  const clock = new FakeClock()
  const first = await startFiles(t, { world, clock })
  const alice = await world.token('alice')
  await first.upload(alice, 'kept.txt', 'still here', 'text/plain')
  const issuedBefore = await first.link(alice, 'kept.txt')
  const usedBefore = await first.link(alice, 'kept.txt')
  t.equal((await first.app.inject({ url: `/files/download/${usedBefore}` })).statusCode, 200)
  await first.app.close()

  t.ok(existsSync(join(world.dir, 'files.db')), 'kept in ${DATA_DIR}/files.db')
  const secretFile = join(world.dir, 'files-link.secret')
  t.ok(existsSync(secretFile), 'the generated link secret is kept in DATA_DIR')
  t.equal(statSync(secretFile).mode & 0o777, 0o600, 'readable by its owner only')

  const app = buildFiles({ config: loadFilesConfig(world.env), logger: captureLogs().logger, now: clock.now })
  t.teardown(() => app.close())
  await app.ready()
  const list = await app.inject({ url: '/files', headers: bearer(alice) })
  t.same(
    list.json().files.map((f: { name: string }) => f.name),
    ['kept.txt'],
  )
  let r = await app.inject({ url: `/files/download/${issuedBefore}` })
  t.equal(r.statusCode, 200, 'a link issued before the restart')
  t.equal(r.body, 'still here')
  r = await app.inject({ url: `/files/download/${usedBefore}` })
  t.equal(r.statusCode, 410, 'a link used before the restart stays used')
})

t.test(
  'FILES_LINK_SECRET replaces the generated secret; links of one secret fail under another',
  async (t) => {
    const world = await startServiceWorld(t)
    const a = await startFiles(t, {
      world,
      env: { FILES_LINK_SECRET: 'secret-a-0123456789-0123456789-0123456789' },
    })
    const alice = await world.token('alice')
    await a.upload(alice, 'a.txt', 'A')
    const token = await a.link(alice, 'a.txt')
    t.notOk(existsSync(join(world.dir, 'files-link.secret')), 'no secret file when one is configured')
    await a.app.close()
    const b = await startFiles(t, {
      world,
      env: { FILES_LINK_SECRET: 'secret-b-0123456789-0123456789-0123456789' },
    })
    const r = await b.app.inject({ url: `/files/download/${token}` })
    t.equal(r.statusCode, 401)
  },
)

t.test('a link secret file too short to be safe stops the start', async (t) => {
  const world = await startServiceWorld(t)
  writeFileSync(join(world.dir, 'files-link.secret'), 'short\n', { mode: 0o600 })
  const app = buildFiles({ config: loadFilesConfig(world.env), logger: captureLogs().logger })
  t.teardown(() => app.close())
  await t.rejects(async () => app.ready(), /files-link\.secret holds fewer than 32 characters/)
})

t.test('operations and the entry point', async (t) => {
  const { app } = await startFiles(t)
  const ready = await app.operations.inject('/readyz')
  t.equal(ready.statusCode, 200)
  t.same(ready.json().checks, { keys: true, 'refused-keys': true, store: true })

  const world = await startServiceWorld(t)
  const server = await startFilesServer(
    loadFilesConfig({ ...world.env, FILES_PORT: '0', LOG_LEVEL: 'silent' }),
  )
  t.teardown(() => server.close())
  const port = (server.server.address() as { port: number }).port
  t.equal((await httpCall(`http://127.0.0.1:${port}/healthz`)).status, 200)
})
