import t from 'tap'
import { DOWNLOAD_LINK_TYPE } from '../../../services/files/download-links.js'
import { b64url, signHmac } from '../../helpers/jws.js'
import { bearer, httpCall, listenOnFreePort } from '../../helpers/services.js'
import { startFiles } from './fixtures.js'

const claimsOf = (token: string) =>
  JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8'))

t.test('a link serves the file once, then 410', async (t) => {
  const { world, app, upload, link, logs } = await startFiles(t)
  const alice = await world.token('alice')
  const bytes = Buffer.from([0, 1, 2, 255, 254, 10, 13])
  await upload(alice, 'report.bin', bytes, 'application/pdf')
  const token = await link(alice, 'report.bin')

  let r = await app.inject({ url: `/files/download/${token}` })
  t.equal(r.statusCode, 200, 'no login needed: the link is the credential')
  t.same(r.rawPayload, bytes, 'the exact bytes')
  t.equal(r.headers['content-type'], 'application/pdf')
  t.equal(r.headers['content-disposition'], 'attachment; filename="report.bin"')
  t.equal(r.headers['cache-control'], 'no-store')
  t.equal(r.headers['x-content-type-options'], 'nosniff')
  t.equal(r.headers['referrer-policy'], 'no-referrer')
  t.match(r.headers['content-security-policy'], /sandbox/)

  r = await app.inject({ url: `/files/download/${token}` })
  t.equal(r.statusCode, 410, 'a second use')
  t.equal(r.json().code, 'KG_LINK_GONE')
  t.equal(r.headers['cache-control'], 'no-store')
  r = await app.inject({ url: `/files/download/${token}`, headers: bearer(alice) })
  t.equal(r.statusCode, 410, 'even for the owner')

  const second = await link(alice, 'report.bin')
  t.equal(
    (await app.inject({ url: `/files/download/${second}` })).statusCode,
    200,
    'a new link works once more',
  )

  for (const secret of [token, second, alice]) t.equal(logs.find(secret).length, 0, 'no token in the logs')
  t.ok(logs.find('/files/download/[redacted]').length >= 2, 'the download URL is logged redacted')
})

t.test('expired links are gone (410), within their lifetime they work', async (t) => {
  const { world, app, upload, link, clock } = await startFiles(t)
  const alice = await world.token('alice')
  await upload(alice, 'a.txt', 'A')
  const early = await link(alice, 'a.txt')
  const late = await link(alice, 'a.txt')
  clock.advance(59_000)
  t.equal((await app.inject({ url: `/files/download/${early}` })).statusCode, 200, 'at 59 s')
  clock.advance(1_000)
  const r = await app.inject({ url: `/files/download/${late}` })
  t.equal(r.statusCode, 410, 'at 60 s')
  t.equal(r.json().code, 'KG_LINK_GONE')
})

t.test('tampered, forged or misdirected links are 401', async (t) => {
  const { world, app, upload, link } = await startFiles(t)
  const alice = await world.token('alice')
  const bob = await world.token('bob')
  await upload(alice, 'a.txt', 'A')
  await upload(alice, 'b.txt', 'B')
  await upload(bob, 'bob.txt', 'secret of bob')
  const token = await link(alice, 'a.txt')
  const [h, p, s] = token.split('.') as [string, string, string]
  const claims = claimsOf(token)

  const attempts: Array<[string, string]> = [
    ['garbage', 'x'],
    ['a JWT-shaped nothing', 'aaaaaaaa.bbbbbbbb.cccccccc'],
    ['the file swapped in the payload', `${h}.${b64url(JSON.stringify({ ...claims, file: 'b.txt' }))}.${s}`],
    [
      'the owner swapped in the payload',
      `${h}.${b64url(JSON.stringify({ ...claims, sub: 'bob', file: 'bob.txt' }))}.${s}`,
    ],
    ['a guessed secret', signHmac({ alg: 'HS256', typ: DOWNLOAD_LINK_TYPE }, claims, 'guess')],
    ['unsigned', `${b64url(JSON.stringify({ alg: 'none', typ: DOWNLOAD_LINK_TYPE }))}.${p}.`],
    ['an access token', alice],
  ]
  for (const [what, bad] of attempts) {
    const r = await app.inject({ url: `/files/download/${bad}` })
    t.equal(r.statusCode, 401, what)
    t.equal(r.json().code, 'KG_LINK_INVALID', what)
  }
  t.equal(
    (await app.inject({ url: `/files/download/${token}` })).statusCode,
    200,
    'the real link still works once',
  )
})

t.test('a link is bound to its file: another file, another owner, a replaced file', async (t) => {
  const secretEnv = { FILES_LINK_SECRET: 'a-known-secret-for-this-test-0123456789' }
  const { world, app, upload, link, env } = await startFiles(t, { env: secretEnv })
  const alice = await world.token('alice')
  const bob = await world.token('bob')
  await upload(alice, 'a.txt', 'A')
  await upload(bob, 'bob.txt', 'B')
  const token = await link(alice, 'a.txt')
  const claims = claimsOf(token)
  const forge = (over: Record<string, unknown>) =>
    signHmac({ alg: 'HS256', typ: DOWNLOAD_LINK_TYPE }, { ...claims, ...over }, env.FILES_LINK_SECRET!)

  let r = await app.inject({ url: `/files/download/${forge({ file: 'bob.txt', jti: 'j1' })}` })
  t.equal(r.statusCode, 401, "a link naming a file its owner does not have (bob's file, alice's link)")
  t.equal(r.json().code, 'KG_LINK_INVALID')
  r = await app.inject({ url: `/files/download/${forge({ sub: 'bob', file: 'bob.txt', jti: 'j2' })}` })
  t.equal(r.statusCode, 410, "bob's file under another version id is not served")

  await upload(alice, 'a.txt', 'A, version 2')
  r = await app.inject({ url: `/files/download/${token}` })
  t.equal(r.statusCode, 410, 'the file was replaced after the link was issued: the linked version is gone')
  const fresh = await link(alice, 'a.txt')
  r = await app.inject({ url: `/files/download/${fresh}` })
  t.equal(r.body, 'A, version 2')
})

t.test('two concurrent downloads of one link: exactly one 200', async (t) => {
  const { world, app, upload, link } = await startFiles(t)
  const alice = await world.token('alice')
  await upload(alice, 'big.bin', Buffer.alloc(2 * 1024 * 1024, 7))
  const url = await listenOnFreePort(t, app)
  for (let round = 0; round < 5; round++) {
    const token = await link(alice, 'big.bin')
    const answers = await Promise.all(
      Array.from({ length: 4 }, () => httpCall(`${url}/files/download/${token}`)),
    )
    const statuses = answers.map((a) => a.status).sort()
    t.same(statuses, [200, 410, 410, 410], `round ${round}`)
    t.equal(answers.find((a) => a.status === 200)!.bytes.length, 2 * 1024 * 1024)
  }
})

t.test('HEAD does not spend a link; download tokens are no access tokens', async (t) => {
  const { world, app, upload, link } = await startFiles(t)
  const alice = await world.token('alice')
  await upload(alice, 'a.txt', 'A')
  const token = await link(alice, 'a.txt')
  t.equal((await app.inject({ method: 'HEAD', url: `/files/download/${token}` })).statusCode, 404)
  for (const path of ['/files', '/files/a.txt/link']) {
    const r = await app.inject({
      method: path === '/files' ? 'GET' : 'POST',
      url: path,
      headers: bearer(token),
    })
    t.equal(r.statusCode, 401, `a download token as a Bearer token at ${path}`)
    t.equal(r.json().code, 'KG_TOKEN_ISSUER_UNKNOWN')
  }
  t.equal(
    (await app.inject({ url: `/files/download/${token}` })).statusCode,
    200,
    'and the link is still unused',
  )
})

t.test('a JSON file is downloaded with the download headers, not an API answer’s', async (t) => {
  const { world, app, upload, link } = await startFiles(t)
  const alice = await world.token('alice')
  await upload(alice, 'data.json', '{"a":1}', 'application/json')
  const r = await app.inject({ url: `/files/download/${await link(alice, 'data.json')}` })
  t.equal(r.statusCode, 200)
  t.equal(r.body, '{"a":1}', 'the bytes as stored')
  t.equal(r.headers['content-type'], 'application/json')
  t.equal(r.headers['content-disposition'], 'attachment; filename="data.json"')
  t.equal(r.headers['cache-control'], 'no-store')
  t.equal(r.headers['x-content-type-options'], 'nosniff')
  t.match(r.headers['content-security-policy'], /sandbox/)
  t.equal(r.headers['referrer-policy'], 'no-referrer')
})

t.test('an unspent link dies with its user’s access (logout-all, password or role change)', async (t) => {
  const { world, app, upload, link, clock } = await startFiles(t)
  const alice = await world.token('alice')
  await upload(alice, 'a.txt', 'alice’s')
  const before = await link(await world.token('alice', { sid: 'session-3' }), 'a.txt')
  const session = await link(alice, 'a.txt')
  const revocations = app.auth.revocations.get(world.issuer.url)!
  const window = { createdAt: clock.now(), expiresAt: clock.now() + 900_000 }
  revocations.apply([{ type: 'session', sessionId: 'session-1', ...window }])
  let r = await app.inject({ url: `/files/download/${session}` })
  t.equal(r.statusCode, 410, 'its session revoked: the link is gone')
  t.equal(r.json().code, 'KG_LINK_GONE')

  revocations.apply([{ type: 'user', subject: 'alice', issuedBefore: clock.now() + 1000, ...window }])
  r = await app.inject({ url: `/files/download/${before}` })
  t.equal(r.statusCode, 410, 'every token of the user revoked (the feed’s user event): the link is gone')

  const bob = await world.token('bob', { sid: 'session-2' })
  await upload(bob, 'b.txt', 'bob’s')
  r = await app.inject({ url: `/files/download/${await link(bob, 'b.txt')}` })
  t.equal(r.statusCode, 200, 'another user’s link is untouched')
})
