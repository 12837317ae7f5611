import t from 'tap'
import { request } from 'undici'
import { rawRequest } from '../helpers/raw-http.js'
import { type Echo, startEchoUpstream, startGateway, startIssuer } from './helpers/servers.js'

t.test('hop-by-hop headers stay on their hop, each way', async (t) => {
  const issuer = await startIssuer(t)
  const upstream = await startEchoUpstream(t)
  const gw = await startGateway(t, {
    issuer,
    routes: {
      upstreams: { up: upstream.url },
      routes: [{ prefix: '/', upstream: 'up', auth: { mode: 'none' } }],
    },
  })

  // Sent byte for byte (undici keeps `Connection` to itself); the helper's own `connection: close` comes
  // first, and the server reads the two as one list.
  const sent = await rawRequest(gw.url, {
    target: '/a',
    headers: [
      ['connection', 'x-private, x-request-id, x-forwarded-for, keep-alive'],
      ['x-private', 'hop only'],
      ['x-kept', 'end to end'],
      ['te', 'trailers'],
      ['proxy-authorization', 'Basic eDp5'],
      ['x-request-id', 'trace-1'],
    ],
  })
  const echo = JSON.parse(sent.body) as Echo
  t.equal(echo.headers['x-private'], undefined, 'a header the client lists in Connection is dropped')
  t.equal(echo.headers['x-kept'], 'end to end')
  t.equal(echo.headers.te, undefined)
  t.equal(echo.headers['proxy-authorization'], undefined)
  t.equal(echo.headers['x-request-id'], 'trace-1', 'Connection cannot remove what the gateway sets')
  t.equal(echo.headers['x-forwarded-for'], '127.0.0.1')

  upstream.handle = (_request, reply) =>
    reply
      .header('connection', 'x-secret')
      .header('x-secret', 'upstream hop only')
      .header('keep-alive', 'timeout=1')
      .header('access-control-allow-origin', '*')
      .header('x-request-id', 'upstream-made')
      .header('set-cookie', ['a=1', 'b=2'])
      .send({ ok: true })
  const res = await request(`${gw.url}/b`, { headers: { 'x-request-id': 'trace-2' } })
  await res.body.json()
  t.equal(res.headers['x-secret'], undefined, 'a header the upstream lists in Connection is dropped')
  t.equal(res.headers['access-control-allow-origin'], undefined, 'the gateway alone decides CORS')
  t.not(res.headers['keep-alive'], 'timeout=1')
  t.equal(res.headers['x-request-id'], 'trace-2', 'the request id is the gateway’s')
  t.same(res.headers['set-cookie'], ['a=1', 'b=2'], 'repeated headers survive')
})

t.test('the forwarding chain keeps only what trusted hops said', async (t) => {
  const issuer = await startIssuer(t)
  const upstream = await startEchoUpstream(t)
  const routes = {
    upstreams: { up: upstream.url },
    routes: [{ prefix: '/', upstream: 'up', auth: { mode: 'none' as const } }],
  }
  const trusting = await startGateway(t, { issuer, routes, env: { GATEWAY_TRUST_PROXY: '127.0.0.1' } })
  const spoofed = {
    'x-forwarded-for': '198.51.100.7, 203.0.113.9',
    'x-forwarded-proto': 'https',
    'x-forwarded-host': 'shop.example',
    forwarded: 'for=10.0.0.1',
    'x-real-ip': '10.0.0.2',
  }
  let res = await request(`${trusting.url}/a`, { headers: spoofed })
  let echo = (await res.body.json()) as Echo
  // The loopback peer is trusted to say the client was 203.0.113.9; that address is not trusted, so what it
  // claimed (198.51.100.7) is dropped.
  t.equal(echo.headers['x-forwarded-for'], '203.0.113.9, 127.0.0.1', 'a trusted peer: appended to')
  t.equal(echo.headers['x-forwarded-proto'], 'https')
  t.equal(echo.headers['x-forwarded-host'], 'shop.example')
  t.equal(echo.headers.forwarded, undefined)
  t.equal(echo.headers['x-real-ip'], undefined)

  const distrustful = await startGateway(t, { issuer, routes, env: { GATEWAY_TRUST_PROXY: '10.1.2.3' } })
  res = await request(`${distrustful.url}/a`, { headers: spoofed })
  echo = (await res.body.json()) as Echo
  t.equal(echo.headers['x-forwarded-for'], '127.0.0.1', 'an untrusted peer: its chain is replaced')
  t.equal(echo.headers['x-forwarded-proto'], 'http')
  t.match(echo.headers['x-forwarded-host'], /^127\.0\.0\.1:\d+$/)
  t.not(echo.headers.host, echo.headers['x-forwarded-host'], 'Host is the upstream’s')

  res = await request(`${distrustful.url}/a`)
  echo = (await res.body.json()) as Echo
  t.match(echo.headers['x-request-id'], /^[0-9a-f-]{36}$/, 'a request id is made when none is sent')
  t.equal(res.headers['x-request-id'], echo.headers['x-request-id'], 'and returned to the client')
})
