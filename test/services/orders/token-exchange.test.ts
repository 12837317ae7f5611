/**
 * orders' token exchange against a stand-in token endpoint: what it sends, the per-subject-token cache (an
 * injected clock, no sleeping), its bound, and how refusals and bad answers are told apart.
 */
import { createServer } from 'node:http'
import t, { type Test } from 'tap'
import { loadOrdersConfig } from '../../../services/orders/config.js'
import { ExchangeFailure, TokenExchange } from '../../../services/orders/token-exchange.js'

interface Seen {
  authorization: string | undefined
  contentType: string | undefined
  form: URLSearchParams
}

async function tokenEndpoint(t: Test, answer: (seen: Seen, n: number) => { status: number; body: string }) {
  const seen: Seen[] = []
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (c: Buffer) => (body += c.toString('utf8')))
    req.on('end', () => {
      const s = {
        authorization: req.headers.authorization,
        contentType: req.headers['content-type'],
        form: new URLSearchParams(body),
      }
      seen.push(s)
      const a = req.url === '/base/oauth/token' ? answer(s, seen.length) : { status: 404, body: '{}' }
      res.writeHead(a.status, { 'content-type': 'application/json' })
      res.end(a.body)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const { port } = server.address() as { port: number }
  return { url: `http://127.0.0.1:${port}/base/`, seen }
}

const ok = (n: number, expiresIn = 300) => ({
  status: 200,
  body: JSON.stringify({ access_token: `exchanged-${n}`, token_type: 'Bearer', expires_in: expiresIn }),
})

t.test('asks with the client, the subject token and the audience; caches per subject token', async (t) => {
  const endpoint = await tokenEndpoint(t, (_, n) => ok(n))
  let now = 1_000_000
  const exchange = new TokenExchange({
    issuerUrl: endpoint.url,
    clientId: 'kgc_orders',
    clientSecret: 's3cret:+/',
    audience: 'keygate-profile',
    timeoutMs: 5_000,
    now: () => now,
  })
  t.equal(await exchange.tokenFor('user-token-a'), 'exchanged-1')
  const first = endpoint.seen[0]!
  t.equal(
    first.authorization,
    `Basic ${Buffer.from('kgc_orders:s3cret%3A%2B%2F').toString('base64')}`,
    'client_secret_basic, form-urlencoded id and secret (RFC 6749 §2.3.1)',
  )
  t.equal(first.contentType, 'application/x-www-form-urlencoded')
  t.same(Object.fromEntries(first.form), {
    grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
    subject_token: 'user-token-a',
    subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    audience: 'keygate-profile',
  })

  t.equal(await exchange.tokenFor('user-token-a'), 'exchanged-1', 'the same subject token: from the cache')
  t.equal(endpoint.seen.length, 1)
  t.equal(await exchange.tokenFor('user-token-b'), 'exchanged-2', 'another subject token: asked anew')

  now += 300_000 - 10_001
  t.equal(await exchange.tokenFor('user-token-a'), 'exchanged-1', 'still used until 10 s before it expires')
  now += 1
  t.equal(await exchange.tokenFor('user-token-a'), 'exchanged-3', 'then exchanged again')

  t.equal(await exchange.tokenFor('gateway-assertion', 'assertion'), 'exchanged-4')
  t.match(
    Object.fromEntries(endpoint.seen.at(-1)!.form),
    {
      subject_token: 'gateway-assertion',
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    },
    "the gateway's assertion to orders is exchanged as a JWT",
  )
})

t.test('a short-lived token is used for half its life at most', async (t) => {
  const endpoint = await tokenEndpoint(t, (_, n) => ok(n, 10))
  let now = 0
  const exchange = new TokenExchange({
    issuerUrl: endpoint.url,
    clientId: 'c',
    clientSecret: 's',
    audience: 'a',
    timeoutMs: 5_000,
    now: () => now,
  })
  t.equal(await exchange.tokenFor('x'), 'exchanged-1')
  now = 4_999
  t.equal(await exchange.tokenFor('x'), 'exchanged-1')
  now = 5_000
  t.equal(await exchange.tokenFor('x'), 'exchanged-2')
})

t.test('the cache is bounded', async (t) => {
  const endpoint = await tokenEndpoint(t, (_, n) => ok(n))
  const exchange = new TokenExchange({
    issuerUrl: endpoint.url,
    clientId: 'c',
    clientSecret: 's',
    audience: 'a',
    timeoutMs: 5_000,
    now: () => 0,
    cacheSize: 3,
  })
  for (const subject of ['a', 'b', 'c', 'd']) await exchange.tokenFor(subject)
  t.equal(exchange.size, 3, 'never more than its size')
  t.equal(await exchange.tokenFor('d'), 'exchanged-4', 'the newest is kept')
  t.equal(await exchange.tokenFor('a'), 'exchanged-5', 'the oldest was dropped')
})

t.test('refusals and bad answers', async (t) => {
  const answers: Record<string, { status: number; body: string }> = {
    refused: { status: 400, body: '{"error":"invalid_grant"}' },
    unauthorized: { status: 401, body: '{"error":"invalid_client"}' },
    broken: { status: 500, body: '{}' },
    'not json': { status: 200, body: 'hello' },
    'no token': { status: 200, body: '{"token_type":"Bearer","expires_in":300}' },
    'no lifetime': { status: 200, body: '{"access_token":"x","token_type":"Bearer"}' },
  }
  const endpoint = await tokenEndpoint(t, (seen) => answers[seen.form.get('subject_token')!]!)
  const exchange = new TokenExchange({
    issuerUrl: endpoint.url,
    clientId: 'c',
    clientSecret: 's',
    audience: 'a',
    timeoutMs: 5_000,
    now: () => 0,
  })
  const reasonOf = async (subject: string) => {
    try {
      await exchange.tokenFor(subject)
      return 'none'
    } catch (err) {
      t.type(err, ExchangeFailure)
      return (err as ExchangeFailure).reason
    }
  }
  t.equal(await reasonOf('refused'), 'exchange_refused')
  t.equal(await reasonOf('unauthorized'), 'exchange_refused')
  for (const subject of ['broken', 'not json', 'no token', 'no lifetime']) {
    t.equal(await reasonOf(subject), 'exchange_failed', subject)
  }
  t.equal(exchange.size, 0, 'nothing cached from a failure')

  const nowhere = new TokenExchange({
    issuerUrl: 'http://127.0.0.1:1',
    clientId: 'c',
    clientSecret: 's',
    audience: 'a',
    timeoutMs: 2_000,
    now: () => 0,
  })
  const unreachable = await nowhere.tokenFor('x').catch((err: unknown) => err)
  t.equal((unreachable as ExchangeFailure).reason, 'exchange_failed', 'an unreachable issuer')
})

t.test('ORDERS_CLIENT_ID and ORDERS_CLIENT_SECRET come together', async (t) => {
  t.throws(() => loadOrdersConfig({ ORDERS_CLIENT_ID: 'kgc_x' }), /ORDERS_CLIENT_ID and ORDERS_CLIENT_SECRET/)
  t.throws(() => loadOrdersConfig({ ORDERS_CLIENT_SECRET: 'x' }), /ORDERS_CLIENT_ID and ORDERS_CLIENT_SECRET/)
  const config = loadOrdersConfig({ ORDERS_CLIENT_ID: 'kgc_x', ORDERS_CLIENT_SECRET: 'x' })
  t.equal(config.ORDERS_CLIENT_ID, 'kgc_x')
  t.equal(loadOrdersConfig({}).ORDERS_CLIENT_ID, undefined)
})
