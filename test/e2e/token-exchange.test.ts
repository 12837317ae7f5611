/**
 * orders → profile through real processes: the gateway forwards orders no raw token, only the assertion
 * addressed to orders; orders exchanges that assertion at the issuer (RFC 8693) for a token addressed to
 * profile alone, carrying the user as `sub` and orders' client as `act.sub`; that token and profile's
 * assertion, captured at profile, are refused at orders and files, and no other client can exchange orders'
 * assertion. Recording proxies stand in front of orders and of profile.
 */
import { readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { decodeJwt } from 'jose'
import t from 'tap'
import { request } from 'undici'
import { startProcesses } from '../helpers/processes.js'
import { freePort, HttpClient } from '../helpers/system.js'

/** Relays every request to `target` and remembers the Authorization and assertion headers of each. */
async function recordingProxy(
  target: string,
): Promise<{ url: string; seen: string[]; assertions: string[]; requests: number; close(): Promise<void> }> {
  const seen: string[] = []
  const assertions: string[] = []
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    recorded.requests++
    if (typeof req.headers.authorization === 'string') seen.push(req.headers.authorization)
    const assertion = req.headers['x-keygate-assertion']
    if (typeof assertion === 'string') assertions.push(assertion)
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
  const recorded = {
    url: `http://127.0.0.1:${port}`,
    seen,
    assertions,
    requests: 0,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
  return recorded
}

/** A token-exchange request at the issuer, as the client `id` with `secret`. */
async function exchange(issuer: string, id: string, secret: string, form: Record<string, string>) {
  const res = await request(`${issuer}/oauth/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      audience: 'keygate-profile',
      ...form,
    }).toString(),
  })
  return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> }
}

t.test('orders calls profile with an exchanged token that names orders as the actor', async (t) => {
  const profilePort = await freePort()
  const proxy = await recordingProxy(`http://127.0.0.1:${profilePort}`)
  t.teardown(() => proxy.close())
  const ordersPort = await freePort()
  const atOrders = await recordingProxy(`http://127.0.0.1:${ordersPort}`)
  t.teardown(() => atOrders.close())
  const system = await startProcesses({
    env: {
      PROFILE_PORT: String(profilePort),
      PROFILE_URL: proxy.url,
      ORDERS_PORT: String(ordersPort),
      ORDERS_URL: atOrders.url,
    },
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

  const profileAssertion = proxy.assertions.at(-1)!
  t.equal(decodeJwt(profileAssertion).aud, 'profile', "profile's assertion, as the gateway sent it")

  proxy.seen.length = 0
  r = await browser.call('POST', '/api/orders', { token, body: { item: 'Analytical Engine', quantity: 1 } })
  t.equal(r.status, 201, 'order created')
  t.equal(atOrders.requests, 1, 'the gateway called orders once')
  t.same(atOrders.seen, [], 'with the default route table no bearer token reaches orders')
  const ordersAssertion = atOrders.assertions[0]!
  t.equal(decodeJwt(ordersAssertion).aud, 'orders', 'only the assertion addressed to orders')
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
  t.equal(await direct(`http://127.0.0.1:${ordersPort}`, '/orders'), 401, 'orders refuses it')
  t.equal(await direct(system.urls.files, '/files'), 401, 'files refuses it')
  for (const path of ['/api/orders', '/api/files']) {
    r = await browser.call('GET', path, { token: exchanged })
    t.equal(r.status, 401, `the gateway refuses it at ${path}`)
  }

  // profile's assertion, captured at profile: refused by orders and files reached directly.
  const withAssertion = async (base: string, path: string, assertion: string) => {
    const res = await request(`${base}${path}`, { headers: { 'x-keygate-assertion': assertion } })
    await res.body.dump()
    return res.statusCode
  }
  t.equal(await withAssertion(`http://127.0.0.1:${profilePort}`, '/me', profileAssertion), 200)
  t.equal(await withAssertion(`http://127.0.0.1:${ordersPort}`, '/orders', profileAssertion), 401)
  t.equal(await withAssertion(system.urls.files, '/files', profileAssertion), 401)

  // At the issuer, an assertion is exchanged only by the client of the service it is addressed to.
  const issuer = system.urls.issuer
  const ordersId = system.env.ORDERS_CLIENT_ID!
  const ordersSecret = readFileSync(system.env.ORDERS_CLIENT_SECRET_FILE!, 'utf8').trim()
  let x = await exchange(issuer, ordersId, ordersSecret, { subject_token: ordersAssertion })
  t.equal(x.status, 200, "orders' client exchanges orders' assertion")
  t.same(decodeJwt(x.json.access_token as string).act, { sub: ordersId })
  x = await exchange(issuer, ordersId, ordersSecret, { subject_token: profileAssertion })
  t.equal(x.json.error, 'invalid_grant', "orders' client cannot exchange profile's assertion")
  const thief = await system.cli([
    'clients',
    'create',
    '--name',
    'thief',
    '--audiences',
    'keygate-profile',
    '--scopes',
    'profile',
    '--grant-types',
    'urn:ietf:params:oauth:grant-type:token-exchange',
    '--service',
    'profile',
  ])
  t.equal(thief.code, 0, thief.stderr)
  const thiefId = /client_id: (\S+)/.exec(thief.stdout)![1]!
  const thiefSecret = /client_secret: (\S+)/.exec(thief.stdout)![1]!
  x = await exchange(issuer, thiefId, thiefSecret, { subject_token: ordersAssertion })
  t.equal(x.status, 400, "another client cannot exchange orders' assertion")
  t.equal(x.json.error, 'invalid_grant')
  t.equal(x.json.code, 'KG_OAUTH_INVALID_GRANT')

  // A revoked user's assertion yields nothing.
  t.equal((await browser.call('POST', '/auth/logout-all', { token })).status, 204)
  x = await exchange(issuer, ordersId, ordersSecret, { subject_token: ordersAssertion })
  t.equal(x.json.error, 'invalid_grant', 'after logout-all the assertion is revoked with its token')
})
