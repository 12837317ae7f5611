/**
 * orders → profile through real processes: orders exchanges the user's token at the issuer (RFC 8693) for a
 * token addressed to profile alone, carrying the user as `sub` and orders' client as `act.sub`; that token,
 * captured at profile, is refused at orders and files. A recording proxy stands between orders and profile.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { decodeJwt } from 'jose'
import t from 'tap'
import { request } from 'undici'
import { startProcesses } from '../helpers/processes.js'
import { freePort, HttpClient } from '../helpers/system.js'

/** Relays every request to `target` and remembers the Authorization header of each. */
async function recordingProxy(
  target: string,
): Promise<{ url: string; seen: string[]; close(): Promise<void> }> {
  const seen: string[] = []
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (typeof req.headers.authorization === 'string') seen.push(req.headers.authorization)
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const headers = { ...req.headers }
      delete headers.host
      delete headers.connection
      request(`${target}${req.url}`, {
        method: req.method as 'GET',
        headers,
        body: chunks.length ? Buffer.concat(chunks) : undefined,
      }).then(
        async (answer) => {
          res.writeHead(answer.statusCode, { 'content-type': String(answer.headers['content-type'] ?? '') })
          res.end(Buffer.from(await answer.body.arrayBuffer()))
        },
        () => {
          res.writeHead(502)
          res.end()
        },
      )
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

t.test('orders calls profile with an exchanged token that names orders as the actor', async (t) => {
  const profilePort = await freePort()
  const proxy = await recordingProxy(`http://127.0.0.1:${profilePort}`)
  t.teardown(() => proxy.close())
  const system = await startProcesses({
    env: { PROFILE_PORT: String(profilePort), PROFILE_URL: proxy.url },
  })
  t.teardown(() => system.stop())
  t.match(system.env.ORDERS_CLIENT_ID, /^kgc_/, 'the system registered a client for orders on first start')

  const browser = new HttpClient(system.urls.gateway)
  const me = { email: 'ada@example.com', password: 'correct horse battery' }
  t.equal((await browser.call('POST', '/auth/register', { body: me })).status, 202, 'register')
  let r = await browser.call('POST', '/auth/login', { body: me })
  t.equal(r.status, 200, 'login')
  const token = r.json.access_token as string
  const user = decodeJwt(token)
  r = await browser.call('PUT', '/api/profile/me', { token, body: { displayName: 'Ada' } })
  t.equal(r.status, 200, 'profile updated through the gateway')

  proxy.seen.length = 0
  r = await browser.call('POST', '/api/orders', { token, body: { item: 'Analytical Engine', quantity: 1 } })
  t.equal(r.status, 201, 'order created')
  t.equal(r.json.customerName, 'Ada', 'orders got the display name from profile')
  t.equal(proxy.seen.length, 1, 'orders called profile once')
  const exchanged = proxy.seen[0]!.replace(/^Bearer /, '')
  t.not(exchanged, token, "the user's own token did not travel to profile")
  const claims = decodeJwt(exchanged)
  t.equal(claims.sub, user.sub, 'profile sees the user as sub')
  t.same(claims.act, { sub: system.env.ORDERS_CLIENT_ID }, 'and orders as the actor')
  t.equal(claims.aud, 'keygate-profile', 'addressed to profile alone')
  t.equal(claims.client_id, system.env.ORDERS_CLIENT_ID)

  // A second order within the exchanged token's life reuses it: one exchange per subject token.
  r = await browser.call('POST', '/api/orders', { token, body: { item: 'Difference Engine', quantity: 2 } })
  t.equal(r.status, 201)
  t.equal(proxy.seen[1], proxy.seen[0], 'the exchanged token is reused from the cache')

  // Captured at profile: good at profile, refused by every other service, directly and through the gateway.
  const direct = async (base: string, path: string) => {
    const res = await request(`${base}${path}`, { headers: { authorization: `Bearer ${exchanged}` } })
    await res.body.dump()
    return res.statusCode
  }
  t.equal(await direct(`http://127.0.0.1:${profilePort}`, '/me'), 200, 'profile accepts it')
  t.equal(await direct(system.urls.orders, '/orders'), 401, 'orders refuses it')
  t.equal(await direct(system.urls.files, '/files'), 401, 'files refuses it')
  for (const path of ['/api/orders', '/api/files']) {
    r = await browser.call('GET', path, { token: exchanged })
    t.equal(r.status, 401, `the gateway refuses it at ${path}`)
  }
})
