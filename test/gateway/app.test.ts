import t from 'tap'
import { Agent, request } from 'undici'
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
