import t from 'tap'
import { connect } from 'node:net'
import { startHostileWorld } from '../../helpers/hostile-world.js'
import { bearer, httpCall, listenOnFreePort } from '../../helpers/services.js'
import { startFiles } from './fixtures.js'

t.test('PUT /files/:name stores raw bytes of any type; GET /files lists only the caller’s', async (t) => {
  const { world, app, upload } = await startFiles(t)
  const alice = await world.token('alice')
  const bob = await world.token('bob')

  let r = await app.inject({
    method: 'PUT',
    url: '/files/notes.txt',
    headers: { ...bearer(alice), 'content-type': 'text/plain; charset=utf-8' },
    payload: 'hello',
  })
  t.equal(r.statusCode, 201, 'a new file')
  t.match(r.json(), { name: 'notes.txt', size: 5, contentType: 'text/plain; charset=utf-8' })
  t.match(r.json().updatedAt, /^\d{4}-\d\d-\d\dT/)
  t.equal(await upload(alice, 'notes.txt', 'hello again', 'text/plain'), 200, 'replacing a file is a 200')
  t.equal(await upload(alice, 'data.json', '{"not": "parsed"', 'application/json'), 201, 'JSON is just bytes')
  t.equal(await upload(alice, 'empty.bin', ''), 201, 'an empty file')
  r = await app.inject({
    method: 'PUT',
    url: '/files/untyped',
    headers: bearer(alice),
    payload: Buffer.from([0, 1, 2]),
  })
  t.equal(r.statusCode, 201)
  t.equal(r.json().contentType, 'application/octet-stream', 'no Content-Type: octet-stream')
  t.equal(await upload(bob, 'notes.txt', 'bob’s own'), 201, "bob's file of the same name is his own")

  r = await app.inject({ url: '/files', headers: bearer(alice) })
  t.equal(r.statusCode, 200)
  t.same(
    r
      .json()
      .files.map((f: { name: string; size: number; contentType: string }) => [f.name, f.size, f.contentType]),
    [
      ['data.json', 16, 'application/json'],
      ['empty.bin', 0, 'application/octet-stream'],
      ['notes.txt', 11, 'text/plain'],
      ['untyped', 3, 'application/octet-stream'],
    ],
  )
  t.same(Object.keys(r.json().files[0]).sort(), ['contentType', 'name', 'size', 'updatedAt'])
  r = await app.inject({ url: '/files', headers: bearer(bob) })
  t.same(
    r.json().files.map((f: { name: string }) => f.name),
    ['notes.txt'],
  )
  r = await app.inject({ url: '/files', headers: bearer(await world.token('carol')) })
  t.same(r.json(), { files: [] })
})

/** The status code of one request written byte for byte, as no HTTP client would normalise it. */
function rawStatus(
  url: URL,
  requestLine: string,
  headers: Record<string, string>,
  body: string,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname)
    let answer = ''
    socket.on('data', (chunk) => (answer += chunk.toString('latin1')))
    socket.on('error', reject)
    socket.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0)))
    const lines = Object.entries({ host: url.host, connection: 'close', ...headers }).map(
      ([k, v]) => `${k}: ${v}`,
    )
    socket.end(`${requestLine} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n${body}`)
  })
}

t.test('bad names and bad Content-Types are 400; nothing is stored', async (t) => {
  const { world, app } = await startFiles(t)
  const alice = bearer(await world.token('alice'))
  for (const path of [
    '.',
    '..',
    '%2E%2E',
    '..%2F..%2Fetc%2Fpasswd',
    'a%2Fb',
    'a%20b',
    'caf%C3%A9',
    'x'.repeat(129),
    'a%00b',
  ]) {
    const r = await app.inject({ method: 'PUT', url: `/files/${path}`, headers: alice, payload: 'x' })
    t.ok([400, 404].includes(r.statusCode), `PUT /files/${path.slice(0, 40)} → ${r.statusCode}`)
    if (r.statusCode === 400) t.equal(r.json().code, 'KG_INVALID_REQUEST')
    const link = await app.inject({ method: 'POST', url: `/files/${path}/link`, headers: alice })
    t.ok([400, 404].includes(link.statusCode), `POST /files/${path.slice(0, 40)}/link → ${link.statusCode}`)
  }
  // HTTP clients resolve dot segments before sending; a raw request does not, and the route refuses it.
  const url = new URL(await listenOnFreePort(t, app))
  for (const path of ['..', '.', '%2E%2E', '%2e', '.%2E']) {
    const status = await rawStatus(url, `PUT /files/${path}`, { ...alice, 'content-length': '1' }, 'x')
    t.equal(status, 400, `raw PUT /files/${path}`)
  }
  let r = await app.inject({ url: '/files', headers: alice })
  t.equal(
    (await app.inject({ method: 'PUT', url: `/files/${'x'.repeat(128)}`, headers: alice, payload: 'x' }))
      .statusCode,
    201,
    '128 characters',
  )
  r = await app.inject({
    method: 'PUT',
    url: '/files/a.txt',
    headers: { ...alice, 'content-type': 'not a media type' },
    payload: 'x',
  })
  t.equal(r.statusCode, 415, 'a Content-Type Fastify cannot parse')
  r = await app.inject({
    method: 'PUT',
    url: '/files/a.txt',
    headers: { ...alice, 'content-type': 'text/plain; charset' },
    payload: 'x',
  })
  t.equal(r.statusCode, 400, 'a malformed parameter')
  r = await app.inject({ url: '/files', headers: alice })
  t.same(
    r.json().files.map((f: { name: string }) => f.name),
    ['x'.repeat(128)],
  )
})

t.test('the size limit: FILES_MAX_BYTES is fine, one more byte is 413', async (t) => {
  const { world, app, upload } = await startFiles(t, { env: { FILES_MAX_BYTES: '1024' } })
  const alice = await world.token('alice')
  t.equal(await upload(alice, 'max.bin', Buffer.alloc(1024, 1)), 201)
  const r = await app.inject({
    method: 'PUT',
    url: '/files/big.bin',
    headers: { ...bearer(alice), 'content-type': 'application/octet-stream' },
    payload: Buffer.alloc(1025, 1),
  })
  t.equal(r.statusCode, 413)
  t.equal(r.json().code, 'KG_PAYLOAD_TOO_LARGE')
  const list = await app.inject({ url: '/files', headers: bearer(alice) })
  t.same(
    list.json().files.map((f: { name: string }) => f.name),
    ['max.bin'],
  )
})

t.test('the default limit is 10 MiB', async (t) => {
  const { world, app, upload } = await startFiles(t)
  const alice = await world.token('alice')
  t.equal(await upload(alice, 'ten.bin', Buffer.alloc(10 * 1024 * 1024)), 201)
  const r = await app.inject({
    method: 'PUT',
    url: '/files/eleven.bin',
    headers: { ...bearer(alice), 'content-type': 'application/octet-stream' },
    payload: Buffer.alloc(10 * 1024 * 1024 + 1),
  })
  t.equal(r.statusCode, 413)
})

t.test('POST /files/:name/link: a gateway URL for one of the caller’s files', async (t) => {
  const { world, app, upload } = await startFiles(t)
  const alice = await world.token('alice')
  const bob = await world.token('bob')
  await upload(alice, 'a.txt', 'A')

  let r = await app.inject({ method: 'POST', url: '/files/a.txt/link', headers: bearer(alice) })
  t.equal(r.statusCode, 200)
  t.same(Object.keys(r.json()).sort(), ['expires_in', 'url'])
  t.equal(r.json().expires_in, 60)
  t.match(r.json().url, new RegExp(`^${world.gateway.url}/api/files/download/[\\w-]+\\.[\\w-]+\\.[\\w-]+$`))

  r = await app.inject({
    method: 'POST',
    url: '/files/a.txt/link',
    headers: { ...bearer(alice), 'content-type': 'application/json' },
    payload: {},
  })
  t.equal(r.statusCode, 200, 'an empty JSON object is fine')
  r = await app.inject({
    method: 'POST',
    url: '/files/a.txt/link',
    headers: { ...bearer(alice), 'content-type': 'application/json' },
    payload: { ttl: 3600 },
  })
  t.equal(r.statusCode, 400, 'unknown options are refused')
  r = await app.inject({
    method: 'POST',
    url: '/files/a.txt/link',
    headers: { ...bearer(alice), 'content-type': 'text/plain' },
    payload: 'ttl=3600',
  })
  t.equal(r.statusCode, 400, 'so is any other body')

  r = await app.inject({ method: 'POST', url: '/files/a.txt/link', headers: bearer(bob) })
  t.equal(r.statusCode, 404, "a link to another user's file")
  t.equal(r.json().code, 'KG_NOT_FOUND')
  r = await app.inject({ method: 'POST', url: '/files/missing.txt/link', headers: bearer(alice) })
  t.equal(r.statusCode, 404)
})

t.test(
  'the quota: FILES_QUOTA_BYTES and FILES_QUOTA_COUNT per user, 413 KG_QUOTA_EXCEEDED past them',
  async (t) => {
    const { world, app, upload } = await startFiles(t, {
      env: { FILES_QUOTA_BYTES: '100', FILES_QUOTA_COUNT: '3' },
    })
    const alice = await world.token('alice')
    const bob = await world.token('bob')
    t.equal(await upload(alice, 'a.bin', Buffer.alloc(60)), 201)
    let r = await app.inject({
      method: 'PUT',
      url: '/files/b.bin',
      headers: { ...bearer(alice), 'content-type': 'application/octet-stream' },
      payload: Buffer.alloc(41),
    })
    t.equal(r.statusCode, 413, 'past the byte quota')
    t.same(r.json(), {
      error: 'quota_exceeded',
      code: 'KG_QUOTA_EXCEEDED',
      message: 'Storing this would exceed your storage quota; delete files to make room',
      quota: 'bytes',
      limit: 100,
      used: 60,
    })
    t.equal(await upload(alice, 'b.bin', Buffer.alloc(40)), 201, 'up to the quota exactly')
    t.equal(await upload(alice, 'c.bin', ''), 201, 'a third file')
    r = await app.inject({
      method: 'PUT',
      url: '/files/d.bin',
      headers: { ...bearer(alice), 'content-type': 'application/octet-stream' },
      payload: '',
    })
    t.equal(r.statusCode, 413, 'a fourth file')
    t.match(r.json(), { code: 'KG_QUOTA_EXCEEDED', quota: 'count', limit: 3, used: 3 })
    t.match(r.json().message, /file count quota/)
    t.equal(await upload(alice, 'a.bin', Buffer.alloc(10)), 200, 'replacing a file within the quota')
    t.equal(await upload(bob, 'a.bin', Buffer.alloc(100)), 201, "bob's quota is his own")
    r = await app.inject({ url: '/files', headers: bearer(alice) })
    t.same(
      r.json().files.map((f: { name: string; size: number }) => [f.name, f.size]),
      [
        ['a.bin', 10],
        ['b.bin', 40],
        ['c.bin', 0],
      ],
      'nothing refused was stored',
    )
  },
)

t.test('concurrent uploads cannot together pass the quota', async (t) => {
  const { world, app } = await startFiles(t, { env: { FILES_QUOTA_BYTES: '1000', FILES_QUOTA_COUNT: '100' } })
  const alice = await world.token('alice')
  const statuses = await Promise.all(
    Array.from({ length: 30 }, (_, i) =>
      app
        .inject({
          method: 'PUT',
          url: `/files/f${i}`,
          headers: { ...bearer(alice), 'content-type': 'application/octet-stream' },
          payload: Buffer.alloc(100),
        })
        .then((r) => r.statusCode),
    ),
  )
  t.equal(statuses.filter((s) => s === 201).length, 10, '10 stored')
  t.equal(statuses.filter((s) => s === 413).length, 20, '20 refused')
  const r = await app.inject({ url: '/files', headers: bearer(alice) })
  t.equal(r.json().files.length, 10)
})

t.test('DELETE /files/:name frees the quota; another user’s file is a 404; links die', async (t) => {
  const { world, app, upload, link } = await startFiles(t, {
    env: { FILES_QUOTA_BYTES: '100', FILES_QUOTA_COUNT: '2' },
  })
  const alice = await world.token('alice')
  const bob = await world.token('bob')
  t.equal(await upload(alice, 'a.bin', Buffer.alloc(100)), 201)
  t.equal(await upload(bob, 'b.bin', 'B'), 201)
  t.equal(await upload(alice, 'more.bin', 'x'), 413, 'full')
  const token = await link(alice, 'a.bin')

  let r = await app.inject({ method: 'DELETE', url: '/files/b.bin', headers: bearer(alice) })
  t.equal(r.statusCode, 404, "bob's file, as alice: not found")
  t.equal(r.json().code, 'KG_NOT_FOUND')
  r = await app.inject({ method: 'DELETE', url: '/files/a.bin', headers: bearer(bob) })
  t.equal(r.statusCode, 404, "alice's file, as bob: the same answer")
  t.same(r.json(), { error: 'not_found', code: 'KG_NOT_FOUND', message: 'No such file' })
  r = await app.inject({ method: 'DELETE', url: '/files/missing.bin', headers: bearer(alice) })
  t.equal(r.statusCode, 404, 'a name nobody has')
  t.same(r.json(), { error: 'not_found', code: 'KG_NOT_FOUND', message: 'No such file' }, 'identical')
  r = await app.inject({ method: 'DELETE', url: '/files/a.bin' })
  t.equal(r.statusCode, 401, 'no token')
  r = await app.inject({ method: 'DELETE', url: '/files/a%20b', headers: bearer(alice) })
  t.equal(r.statusCode, 400, 'a bad name')

  r = await app.inject({ method: 'DELETE', url: '/files/a.bin', headers: bearer(alice) })
  t.equal(r.statusCode, 204)
  t.equal(r.body, '')
  r = await app.inject({ method: 'DELETE', url: '/files/a.bin', headers: bearer(alice) })
  t.equal(r.statusCode, 404, 'deleted once')
  t.equal((await app.inject({ url: `/files/download/${token}` })).statusCode, 401, 'its link is dead')
  t.equal(await upload(alice, 'a.bin', Buffer.alloc(100)), 201, 'its bytes and its place are free again')
  r = await app.inject({ url: `/files/download/${token}` })
  t.equal(r.statusCode, 410, 'a new file of the same name is not what the old link named')
  t.equal(await upload(bob, 'b.bin', 'B2'), 200, "bob's file is untouched")
  r = await app.inject({ url: '/files', headers: bearer(alice) })
  t.same(
    r.json().files.map((f: { name: string }) => f.name),
    ['a.bin'],
  )
})

t.test('through the gateway’s default route table: DELETE /api/files/:name', async (t) => {
  const world = await startHostileWorld(t)
  const alice = bearer(await world.token({ sub: 'alice' }))
  const api = `${world.gateway.url}/api/files`
  let r = await httpCall(`${api}/a.txt`, { method: 'PUT', headers: alice, body: 'A' })
  t.equal(r.status, 201)
  r = await httpCall(`${api}/a.txt`, { method: 'DELETE', headers: bearer(await world.token({ sub: 'bob' })) })
  t.equal(r.status, 404, "another user's file")
  r = await httpCall(`${api}/a.txt`, { method: 'DELETE' })
  t.equal(r.status, 401, 'no token: refused at the gateway')
  r = await httpCall(`${api}/a.txt`, { method: 'DELETE', headers: alice })
  t.equal(r.status, 204, 'deleted')
  r = await httpCall(api, { headers: alice })
  t.same(r.body, { files: [] })
})
