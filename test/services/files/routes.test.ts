import t from 'tap'
import { connect } from 'node:net'
import { bearer, listenOnFreePort } from '../../helpers/services.js'
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
