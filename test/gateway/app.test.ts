import { connect } from 'node:net'
import t from 'tap'
import { Agent, request } from 'undici'
import { rawRequest } from '../helpers/raw-http.js'
import { startEchoGateway, startEchoUpstream, startGateway, startIssuer } from './helpers/servers.js'

t.test('operations: health, readiness once the issuer’s keys are loaded, metrics', async (t) => {
  const issuer = await startIssuer(t)
  const gw = await startGateway(t, { issuer, listen: false })
  t.equal((await gw.app.inject('/healthz')).statusCode, 200)
  const ready = await gw.app.operations.inject('/readyz')
  t.equal(ready.statusCode, 200)
  t.match(ready.json(), { status: 'ready', checks: { keys: true } })
  const metrics = await gw.app.operations.inject('/metrics')
  t.match(metrics.body, /keygate_http_request_duration_seconds/)
  t.match(metrics.body, /component="gateway"/)
  const notFound = await gw.app.inject('/nowhere')
  t.equal(notFound.statusCode, 404)
  t.match(notFound.json(), { code: 'KG_ROUTE_NOT_FOUND' })
  t.match(notFound.headers['x-request-id'], /^[0-9a-f-]{36}$/, 'every answer carries the request id')
})

t.test('the default table answers on its documented prefixes', async (t) => {
  const issuer = await startIssuer(t)
  const profile = await startEchoUpstream(t)
  const gw = await startGateway(t, { issuer, env: { PROFILE_URL: profile.url, ISSUER_URL: issuer.url } })
  const res = await request(`${gw.url}/api/profile/me`, {
    headers: { authorization: `Bearer ${await issuer.mint()}` },
  })
  t.equal(res.statusCode, 200)
  t.match(await res.body.json(), { url: '/me', headers: { 'x-keygate-assertion': /\./ } })
  const unauthenticated = await request(`${gw.url}/api/profile/me`)
  t.equal(unauthenticated.statusCode, 401)
  await unauthenticated.body.dump()
})

t.test('CORS: listed origins get credentialed answers, others none', async (t) => {
  const { upstream, gw } = await startEchoGateway(t, {
    routes: [{ prefix: '/api', upstream: 'up', auth: { mode: 'required' } }],
    env: { GATEWAY_CORS_ORIGINS: 'https://app.example, https://admin.example' },
  })
  const preflight = (origin: string) =>
    request(`${gw.url}/api/x`, {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization',
      },
    })
  const allowed = await preflight('https://app.example')
  t.equal(allowed.statusCode, 204)
  t.equal(allowed.headers['access-control-allow-origin'], 'https://app.example')
  t.equal(allowed.headers['access-control-allow-credentials'], 'true')
  t.match(allowed.headers['access-control-allow-methods'], /POST/)
  t.equal(allowed.headers['access-control-allow-headers'], 'authorization')
  t.match(allowed.headers.vary, /Origin/)
  await allowed.body.dump()

  const refused = await preflight('https://evil.example')
  t.equal(refused.headers['access-control-allow-origin'], undefined, 'a refused origin gets no Allow-Origin')
  await refused.body.dump()
  t.equal(upstream.requests, 0, 'preflights never reach an upstream, nor need a token')

  const denied = await request(`${gw.url}/api/x`, { headers: { origin: 'https://app.example' } })
  t.equal(denied.statusCode, 401)
  t.equal(
    denied.headers['access-control-allow-origin'],
    'https://app.example',
    'errors are readable by the app',
  )
  t.match(denied.headers['access-control-expose-headers'], /www-authenticate/)
  await denied.body.dump()
})

t.test('graceful shutdown lets an in-flight request finish', async (t) => {
  const { upstream, gw } = await startEchoGateway(t)
  let arrived: () => void
  const inFlight = new Promise<void>((resolve) => (arrived = resolve))
  let release: () => void
  const released = new Promise<void>((resolve) => (release = resolve))
  upstream.handle = async () => {
    arrived()
    await released
    return { finished: true }
  }
  // A keep-alive client: the server must still be able to close once the answer is out.
  const client = new Agent({ keepAliveTimeout: 60_000 })
  t.teardown(() => client.close())
  const pending = request(`${gw.url}/slow`, { dispatcher: client })
  await inFlight
  const closed = gw.app.close()
  release!()
  const res = await pending
  t.equal(res.statusCode, 200)
  t.same(await res.body.json(), { finished: true })
  t.equal(res.headers.connection, 'close', 'the drained connection is not kept alive')
  await closed
  await t.rejects(request(`${gw.url}/slow`, { dispatcher: client }), 'the gateway no longer listens')
})

t.test('HTTP hygiene: refused before anything is proxied; proxied answers pass as sent', async (t) => {
  const issuer = await startIssuer(t)
  const upstream = await startEchoUpstream(t)
  const gw = await startGateway(t, {
    issuer,
    routes: {
      upstreams: { echo: upstream.url },
      routes: [{ prefix: '/echo', upstream: 'echo', auth: { mode: 'none' } }],
    },
  })
  const chunked = (codings: string) =>
    new Promise<string>((resolve, reject) => {
      const socket = connect(Number(new URL(gw.url).port), '127.0.0.1')
      let text = ''
      socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')))
      socket.on('error', reject)
      socket.on('close', () => resolve(text))
      socket.write(
        `POST /echo/x HTTP/1.1\r\nhost: x\r\ntransfer-encoding: ${codings}\r\nconnection: close\r\n\r\n` +
          '4\r\nabcd\r\n0\r\n\r\n',
      )
    })
  let answer = await chunked('gzip, chunked')
  t.match(answer, /^HTTP\/1\.1 501 /, 'Transfer-Encoding: gzip, chunked is 501 (RFC 9112 §6.1)')
  t.match(answer, /"code":"KG_TRANSFER_CODING_UNSUPPORTED"/)
  let r = await rawRequest(gw.url, { target: '/echo/x', headers: [['host', 'other.example']] })
  t.equal(r.status, 400, 'two Host headers (RFC 9112 §3.2)')
  t.equal(r.json?.code, 'KG_HOST_INVALID')
  r = await rawRequest(gw.url, { target: '/echo/%zz' })
  t.equal(r.status, 400, 'a malformed URL')
  t.equal(r.json?.code, 'KG_MALFORMED_URL')
  t.match(r.headers['x-request-id'], /^[0-9a-f-]{36}$/, 'with the request id')
  t.notOk(r.body.includes('%zz'), 'and without the raw path')
  r = await rawRequest(gw.url, { target: '/%' })
  t.equal(r.json?.code, 'KG_MALFORMED_URL')
  t.equal(upstream.requests, 0, 'nothing reached the upstream')

  answer = await chunked('chunked')
  t.match(answer, /^HTTP\/1\.1 200 /, 'plain chunked is proxied')
  t.match(answer, /"bodyLength":4/)
  t.equal(upstream.requests, 1)
  r = await rawRequest(gw.url, { target: '/echo/x' })
  t.equal(r.headers['cache-control'], undefined, "a proxied answer keeps the upstream's (absent) headers")
  t.equal(r.headers['x-content-type-options'], undefined)
})
