/**
 * gateway/upstream-request.ts: what an upstream receives. Unit tests build the headers of injected requests
 * directly; the rest goes through a listening gateway to an echo upstream.
 */
import { once } from 'node:events'
import { request as httpRequest } from 'node:http'
import { type AddressInfo, createServer } from 'node:net'
import { join } from 'node:path'
import Fastify from 'fastify'
import { createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { AssertionSigner } from '../../gateway/assertion-signer.js'
import { DEFAULT_STRIP_HEADERS } from '../../gateway/config.js'
import { type RouteFile, RouteTableError } from '../../gateway/route-file.js'
import { RouteTable } from '../../gateway/route-table.js'
import { forwardPolicy, UpstreamRequestHeaders } from '../../gateway/upstream-request.js'
import { auth } from '../../lib/auth/index.js'
import type { Identity } from '../../lib/auth/types.js'
import { registerErrorHandling } from '../../lib/errors.js'
import { ASSERTION_HEADER, GATEWAY_JWKS_PATH } from '../../lib/identity/constants.js'
import { operations } from '../../lib/operations.js'
import { rawRequest } from '../helpers/raw-http.js'
import { type Echo, startEchoGateway, startGateway, startIssuer } from './helpers/servers.js'

const GATEWAY = 'http://gateway.test'

const CALLER: Identity = {
  subject: 'user-1',
  principal: 'user-1',
  issuer: 'http://issuer.test',
  clientId: 'keygate-web',
  sessionId: 'session-1',
  roles: ['user', 'editor'],
  scopes: ['profile', 'orders'],
  tokenId: 'token-1',
  issuedAt: Math.floor(Date.now() / 1000) - 60,
  expiresAt: Math.floor(Date.now() / 1000) + 900,
  keyId: 'issuer-kid',
  claims: { email: 'a@example.com', org: { id: 'org-7' } },
  source: 'token',
  token: 'verified.token.value',
}

const UNIT_ROUTES: RouteFile = {
  upstreams: { svc: 'http://svc.test' },
  routes: [
    {
      prefix: '/required',
      upstream: 'svc',
      auth: { mode: 'required' },
      forward: {
        token: true,
        subject: true,
        roles: true,
        scopes: true,
        claims: ['email', 'org.id', 'absent'],
      },
    },
    { prefix: '/optional', upstream: 'svc', auth: { mode: 'optional' } },
    {
      prefix: '/bare',
      upstream: 'svc',
      auth: { mode: 'required' },
      forward: { token: false, assertion: false },
    },
    { prefix: '/none', upstream: 'svc', auth: { mode: 'none' } },
    { prefix: '/relay', upstream: 'svc', auth: { mode: 'none' }, forward: { token: true } },
  ],
}

/**
 * An app whose one route answers with the upstream headers `UpstreamRequestHeaders` builds for it, as the
 * caller given to `headersFor` (no verification here: the caller is whoever the test says).
 */
async function unit(t: Test, identityHeaders: readonly string[] = DEFAULT_STRIP_HEADERS) {
  const signer = await AssertionSigner.open({
    keyFile: join(t.testdir(), 'assertion-key.json'),
    issuer: GATEWAY,
  })
  const upstreamHeaders = new UpstreamRequestHeaders({ identityHeaders, signer })
  const table = RouteTable.compile(
    UNIT_ROUTES,
    { issuer: '', profile: '', orders: '', files: '' },
    {
      timeoutMs: 1000,
      rateLimit: { max: 1, windowMs: 1000 },
    },
  )
  const app = Fastify({ trustProxy: '127.0.0.1' })
  t.teardown(() => app.close())
  let caller: Identity | null = null
  app.all('/*', async (req) => upstreamHeaders.build(req, table.match(req.url.split('?')[0]!)!, caller))
  return {
    signer,
    async headersFor(url: string, headers: Record<string, string>, as: Identity | null = null) {
      caller = as
      const res = await app.inject({ url, headers })
      return res.json() as Record<string, string>
    },
  }
}

t.test('forwardPolicy: the assertion by default, the raw token only where the route opts in', async (t) => {
  t.strictSame(forwardPolicy(undefined, 'r'), {
    token: false,
    assertion: true,
    subject: false,
    roles: false,
    scopes: false,
    claims: [],
  })
  t.match(forwardPolicy({ token: true }, 'r'), { token: true }, 'a route may relay the token')
  t.match(forwardPolicy({ token: false, assertion: false }, 'r'), { token: false, assertion: false })
  t.strictSame(forwardPolicy({ claims: ['Org.ID', 'email'] }, 'r').claims, [
    { header: 'x-keygate-claim-org.id', path: ['Org', 'ID'] },
    { header: 'x-keygate-claim-email', path: ['email'] },
  ])
  t.throws(
    () => forwardPolicy({ claims: ['Org', 'org'] }, 'routes[2]'),
    new RouteTableError('routes[2]: forward.claims names x-keygate-claim-org twice'),
  )
})

t.test('the strip set: a client header crosses only when no rule claims it', async (t) => {
  const { headersFor } = await unit(t)
  const sent = {
    connection: 'x-private, keep-alive',
    'x-private': 'hop only',
    'keep-alive': 'timeout=5',
    te: 'trailers',
    trailer: 'x-checksum',
    upgrade: 'websocket',
    'proxy-authorization': 'Basic eDp5',
    'proxy-connection': 'keep-alive',
    expect: '100-continue',
    authorization: 'Bearer client.sent.token',
    'x-request-id': 'trace-1',
    'x-forwarded-for': '198.51.100.7',
    'x-forwarded-proto': 'https',
    'x-forwarded-host': 'shop.example',
    'x-forwarded-port': '443',
    'x-forwarded-prefix': '/shop',
    'x-real-ip': '10.0.0.2',
    forwarded: 'for=10.0.0.1',
    'x-keygate-subject': 'mallory',
    'x-keygate-assertion': 'forged',
    'x-keygate-anything': 'x',
    'x-user-id': 'mallory',
    'x-consumer-username': 'mallory',
    x_user_id: 'mallory',
    x_keygate_subject: 'mallory',
    'x-keygate_roles': 'admin',
    x_request_id: 'trace-2',
    x_forwarded_for: '203.0.113.1',
    transfer_encoding: 'chunked',
    x_private: 'hop only',
    'x-kept': 'end to end',
    x_kept_too: 'no identity in its name',
    cookie: 'a=1',
    accept: 'application/json',
  }
  for (const path of ['/none/x', '/optional/x', '/required/x']) {
    const headers = await headersFor(path, sent)
    t.strictSame(
      Object.keys(headers).sort(),
      [
        'accept',
        'cookie',
        'user-agent',
        'x-forwarded-for',
        'x-forwarded-host',
        'x-forwarded-proto',
        'x-kept',
        'x-request-id',
        'x_kept_too',
      ],
      `${path}, anonymous: only end-to-end headers and the gateway's own (names compared with _ as -)`,
    )
  }
})

t.test('the configured identity headers replace the default list; x-keygate-* always goes', async (t) => {
  const { headersFor } = await unit(t, ['x-tenant-user', 'x_tenant_roles'])
  const headers = await headersFor('/none/x', {
    'x-tenant-user': 'mallory',
    x_tenant_user: 'mallory',
    'x-tenant-roles': 'admin',
    'x-user-id': 'no longer listed',
    'x-keygate-subject': 'mallory',
  })
  t.equal(headers['x-tenant-user'], undefined)
  t.equal(headers.x_tenant_user, undefined, 'a listed name with _ for -')
  t.equal(headers['x-tenant-roles'], undefined, 'a name configured with _ strips its - spelling too')
  t.equal(headers['x-user-id'], 'no longer listed')
  t.equal(headers['x-keygate-subject'], undefined)
})

t.test('the forwarding chain and request id are the gateway’s', async (t) => {
  const { headersFor } = await unit(t)
  let headers = await headersFor('/none/x', {})
  t.equal(headers['x-forwarded-for'], '127.0.0.1', 'the peer, when nobody forwarded')
  t.equal(headers['x-forwarded-proto'], 'http')
  t.equal(headers['x-forwarded-host'], 'localhost:80')
  t.match(headers['x-request-id'], /^req-/, 'the request id is Fastify’s for this request')
  headers = await headersFor('/none/x', { 'x-forwarded-for': '198.51.100.7, 203.0.113.9' })
  t.equal(headers['x-forwarded-for'], '203.0.113.9, 127.0.0.1', 'what trusted hops said, then the peer')
})

t.test(
  'the token relayed where the route opts in: the verified one, or on a public route the client’s as sent',
  async (t) => {
    const { headersFor } = await unit(t)
    const client = { authorization: 'bearer client.sent.token' }
    t.equal(
      (await headersFor('/required/x', client, CALLER)).authorization,
      'Bearer verified.token.value',
      'an authenticated route relays the verified token, in canonical form',
    )
    t.equal((await headersFor('/bare/x', client, CALLER)).authorization, undefined, 'forward.token false')
    t.equal(
      (await headersFor('/optional/x', client, CALLER)).authorization,
      undefined,
      'by default no raw token crosses, only the assertion addressed to the upstream',
    )
    t.equal(
      (await headersFor('/required/x', client, { ...CALLER, token: undefined })).authorization,
      undefined,
      'an identity without a token (from an assertion) relays none',
    )
    t.equal((await headersFor('/optional/x', client)).authorization, undefined, 'an anonymous caller: none')
    t.equal((await headersFor('/none/x', client)).authorization, undefined, 'a public route by default: none')
    t.equal((await headersFor('/relay/x', client)).authorization, client.authorization, 'relayed as sent')
    t.equal(
      (await headersFor('/relay/x', { authorization: 'Basic dXNlcjpwYXNz' })).authorization,
      'Basic dXNlcjpwYXNz',
      'whatever its scheme: the public route never looked at it',
    )
    t.equal((await headersFor('/relay/x', {})).authorization, undefined, 'nothing sent, nothing relayed')
  },
)

t.test('the assertion and convenience headers come from the verified caller only', async (t) => {
  const { headersFor, signer } = await unit(t)
  const forged = { 'x-keygate-subject': 'mallory', 'x-keygate-claim-email': '"ceo@example.com"' }
  const headers = await headersFor('/required/x', forged, {
    ...CALLER,
    subject: 'zoë\n',
    roles: ['user', 'editor'],
  })
  t.equal(headers['x-keygate-subject'], 'zo\\u00eb\\u000a', 'printable ASCII only, JSON escapes')
  t.equal(headers['x-keygate-roles'], 'user,editor')
  t.equal(headers['x-keygate-scopes'], 'profile orders')
  t.equal(headers['x-keygate-claim-email'], '"a@example.com"')
  t.equal(headers['x-keygate-claim-org.id'], '"org-7"')
  t.notOk('x-keygate-claim-absent' in headers, 'an absent claim is no header')
  const { payload } = await jwtVerify(headers[ASSERTION_HEADER]!, createLocalJWKSet(signer.jwks), {
    issuer: GATEWAY,
    audience: 'svc',
  })
  t.equal(payload.sub, 'zoë\n', 'the assertion is addressed to the route’s upstream, about the caller')

  const bare = await headersFor('/bare/x', {}, CALLER)
  t.equal(bare[ASSERTION_HEADER], undefined, 'forward.assertion false')
  const optional = await headersFor('/optional/x', {}, CALLER)
  t.ok(optional[ASSERTION_HEADER], 'an optional route forwards a caller it verified')
  t.equal(optional['x-keygate-subject'], undefined, 'convenience headers only when asked for')
  const anonymous = await headersFor('/required/x', forged)
  t.strictSame(
    Object.keys(anonymous).filter((h) => h.startsWith('x-keygate-')),
    [],
    'no caller: nothing identity-like',
  )
})

t.test('Connection cannot remove what the gateway sets', async (t) => {
  const { headersFor } = await unit(t)
  const headers = await headersFor(
    '/required/x',
    { connection: `authorization, ${ASSERTION_HEADER}, x-keygate-subject, x-request-id, x-forwarded-for` },
    CALLER,
  )
  t.ok(headers.authorization && headers[ASSERTION_HEADER] && headers['x-keygate-subject'])
  t.ok(headers['x-request-id'] && headers['x-forwarded-for'])
})

/** Identity headers a client might try to smuggle. */
const SPOOFED = {
  'x-keygate-subject': 'admin',
  'x-keygate-roles': 'admin',
  'x-keygate-assertion': 'forged.assertion.value',
  'x-keygate-claim-email': '"ceo@example.com"',
  'x-keygate-anything': 'x',
  'x-user-id': 'admin',
  'x-remote-user': 'admin',
  'x-forwarded-user': 'admin',
  'x-auth-request-groups': 'admins',
  'x-jwt-payload': 'eyJzdWIiOiJhZG1pbiJ9',
  'x-consumer-username': 'admin',
  x_user_id: 'admin',
  x_keygate_subject: 'admin',
  x_keygate_assertion: 'forged.assertion.value',
  x_forwarded_user: 'admin',
}

/** A gateway with one route of each kind to the echo upstream `svc`. */
function setup(t: Test, env: Record<string, string> = {}) {
  return startEchoGateway(t, {
    routes: [
      {
        prefix: '/required',
        upstream: 'svc',
        auth: { mode: 'required' },
        forward: {
          token: true,
          subject: true,
          roles: true,
          scopes: true,
          claims: ['roles', 'org.id', 'org', 'missing'],
        },
      },
      { prefix: '/optional', upstream: 'svc', auth: { mode: 'optional' } },
      { prefix: '/none', upstream: 'svc', auth: { mode: 'none' } },
      { prefix: '/relay', upstream: 'svc', auth: { mode: 'none' }, forward: { token: true } },
      { prefix: '/admin', upstream: 'svc', auth: { mode: 'required', roles: ['admin'] } },
      {
        prefix: '/bare',
        upstream: 'svc',
        auth: { mode: 'required' },
        forward: { token: false, assertion: false },
      },
    ],
    env,
  })
}

async function echoOf(url: string, headers: Record<string, string>): Promise<Echo> {
  const res = await request(url, { headers })
  if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${await res.body.text()}`)
  return (await res.body.json()) as Echo
}

t.test(
  'spoofed identity headers never reach an upstream, on any route kind, with or without a token',
  async (t) => {
    const { issuer, gw } = await setup(t)
    const token = await issuer.mint()
    const cases: Array<[string, Record<string, string>]> = [
      ['/required/x', { authorization: `Bearer ${token}` }],
      ['/optional/x', { authorization: `Bearer ${token}` }],
      ['/optional/x', {}],
      ['/none/x', { authorization: `Bearer ${token}` }],
      ['/none/x', {}],
      ['/relay/x', {}],
    ]
    for (const [path, auth] of cases) {
      const echo = await echoOf(`${gw.url}${path}`, { ...SPOOFED, ...auth })
      const label = `${path} ${auth.authorization ? 'with' : 'without'} a token`
      for (const [name, value] of Object.entries(SPOOFED)) {
        t.not(echo.headers[name], value, `${label}: ${name} is not the client's`)
      }
      if (path.startsWith('/none') || path === '/relay/x' || !auth.authorization) {
        const identityLike = Object.keys(echo.headers).filter((h) => h.startsWith('x-keygate-'))
        t.same(identityLike, [], `${label}: nothing identity-like is attached`)
      }
    }
  },
)

t.test('GATEWAY_STRIP_HEADERS replaces the list of identity headers (names case-insensitive)', async (t) => {
  const { gw } = await setup(t, { GATEWAY_STRIP_HEADERS: 'X-Tenant-User, x-remote-user' })
  const echo = await echoOf(`${gw.url}/none/x`, {
    'x-tenant-user': 'admin',
    'x-remote-user': 'admin',
    'x-user-id': 'no longer listed',
    'x-keygate-subject': 'admin',
  })
  t.equal(echo.headers['x-tenant-user'], undefined)
  t.equal(echo.headers['x-remote-user'], undefined)
  t.equal(echo.headers['x-user-id'], 'no longer listed')
  t.equal(echo.headers['x-keygate-subject'], undefined, 'the x-keygate- namespace is always stripped')
})

t.test('a valid token passes and the upstream sees who it is, in forms it can verify', async (t) => {
  const { issuer, gw } = await setup(t)
  const token = await issuer.mint({
    sub: 'user-42',
    roles: ['user', 'editor'],
    scope: 'profile orders',
    org: { id: 'org-7', name: 'Zoë & co' },
  })
  const echo = await echoOf(`${gw.url}/required/me`, { authorization: `bearer ${token}` })
  t.equal(echo.headers.authorization, `Bearer ${token}`, 'the token is relayed')
  t.equal(echo.headers['x-keygate-subject'], 'user-42')
  t.equal(echo.headers['x-keygate-roles'], 'user,editor')
  t.equal(echo.headers['x-keygate-scopes'], 'profile orders')
  t.same(JSON.parse(echo.headers['x-keygate-claim-roles'] as string), ['user', 'editor'], 'an array claim')
  t.same(JSON.parse(echo.headers['x-keygate-claim-org.id'] as string), 'org-7', 'a nested claim')
  t.same(
    JSON.parse(echo.headers['x-keygate-claim-org'] as string),
    { id: 'org-7', name: 'Zoë & co' },
    'an object, ASCII-safe',
  )
  t.equal(echo.headers['x-keygate-claim-missing'], undefined, 'an absent claim is no header')

  const assertion = echo.headers[ASSERTION_HEADER] as string
  const jwks = createRemoteJWKSet(new URL(`${gw.url}/.well-known/gateway-jwks.json`))
  const { payload, protectedHeader } = await jwtVerify(assertion, jwks, {
    issuer: gw.config.GATEWAY_URL,
    audience: 'svc',
    typ: 'kg-assertion+jwt',
    algorithms: ['EdDSA'],
  })
  t.equal(protectedHeader.alg, 'EdDSA')
  t.match(payload, { sub: 'user-42', roles: ['user', 'editor'], scope: 'profile orders', sid: 'session-1' })
  t.equal(payload.at_iss, issuer.url)
  t.equal(payload.at_kid, decodeProtectedHeader(token).kid)

  const bare = await echoOf(`${gw.url}/bare/x`, { authorization: `Bearer ${token}` })
  t.equal(bare.headers.authorization, undefined, 'forward.token false: no token relayed')
  t.equal(bare.headers[ASSERTION_HEADER], undefined, 'forward.assertion false: no assertion')

  const anonymous = await echoOf(`${gw.url}/optional/x`, {})
  t.equal(anonymous.headers.authorization, undefined)
  const identified = await echoOf(`${gw.url}/optional/x`, { authorization: `Bearer ${token}` })
  t.ok(identified.headers[ASSERTION_HEADER], 'an optional route forwards the identity when there is one')
  t.equal(identified.headers.authorization, undefined, 'but not the raw token unless the route opts in')
})

t.test('Authorization crosses a public route only when the route relays it', async (t) => {
  const { gw } = await setup(t)
  const authorization = 'Bearer opaque-or-not'
  t.equal((await echoOf(`${gw.url}/none/x`, { authorization })).headers.authorization, undefined)
  t.equal((await echoOf(`${gw.url}/relay/x`, { authorization })).headers.authorization, authorization)
})

t.test('a client cannot use Connection to remove the gateway’s assertion', async (t) => {
  const { issuer, gw } = await setup(t)
  const token = await issuer.mint()
  const url = new URL(`${gw.url}/required/x`)
  const echo = await new Promise<Echo>((resolve, reject) => {
    const req = httpRequest(
      url,
      {
        agent: false,
        headers: { authorization: `Bearer ${token}`, connection: `${ASSERTION_HEADER}, x-keygate-subject` },
      },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => (body += c))
        res.on('end', () => resolve(JSON.parse(body) as Echo))
      },
    )
    req.on('error', reject)
    req.end()
  })
  t.ok(echo.headers[ASSERTION_HEADER], 'the assertion is there')
  t.equal(echo.headers['x-keygate-subject'], 'user-1')
})

t.test('refusals carry their RFC 6750 status and challenge, and reach no upstream', async (t) => {
  const { issuer, upstream, gw } = await setup(t)
  const before = upstream.requests

  const missing = await request(`${gw.url}/required/x`)
  t.equal(missing.statusCode, 401)
  t.equal(missing.headers['www-authenticate'], 'Bearer realm="keygate"')
  t.match(await missing.body.json(), { code: 'KG_TOKEN_MISSING' })

  const bad = await request(`${gw.url}/required/x`, { headers: { authorization: 'Bearer not.a.token' } })
  t.equal(bad.statusCode, 401)
  t.match(
    bad.headers['www-authenticate'],
    /^Bearer realm="keygate", error="invalid_token", error_description="/,
  )
  await bad.body.dump()

  const forged = await issuer.mint({}, {}, await (await startIssuer(t)).keys[0])
  const wrongKey = await request(`${gw.url}/required/x`, { headers: { authorization: `Bearer ${forged}` } })
  t.equal(wrongKey.statusCode, 401)
  t.match(wrongKey.headers['www-authenticate'], /error="invalid_token"/)
  await wrongKey.body.dump()

  const user = await issuer.mint({ roles: ['user'] })
  const forbidden = await request(`${gw.url}/admin/x`, { headers: { authorization: `Bearer ${user}` } })
  t.equal(forbidden.statusCode, 403)
  t.match(forbidden.headers['www-authenticate'], /error="insufficient_scope"/)
  t.match(await forbidden.body.json(), { code: 'KG_INSUFFICIENT_SCOPE' })

  const admin = await issuer.mint({ roles: ['admin'] })
  const allowed = await request(`${gw.url}/admin/x`, { headers: { authorization: `Bearer ${admin}` } })
  t.equal(allowed.statusCode, 200)
  await allowed.body.dump()
  t.equal(upstream.requests, before + 1, 'only the allowed request reached the upstream')

  const metrics = (await gw.app.operations.inject('/metrics')).body
  t.match(metrics, /keygate_gateway_requests_total\{route="\/admin",outcome="KG_INSUFFICIENT_SCOPE"[^}]*\} 1/)
})

t.test('a service using the shared plugin accepts the gateway’s assertion, and nothing forged', async (t) => {
  const issuer = await startIssuer(t)
  // The service needs the gateway's address and the gateway the service's: reserve the service's port first.
  const reserved = createServer().listen(0, '127.0.0.1')
  await once(reserved, 'listening')
  const servicePort = (reserved.address() as AddressInfo).port
  await new Promise((resolve) => reserved.close(resolve))
  const serviceUrl = `http://127.0.0.1:${servicePort}`
  const gw = await startGateway(t, {
    issuer,
    routes: {
      upstreams: { profile: serviceUrl },
      routes: [{ prefix: '/api/profile', upstream: 'profile', rewrite: '/', auth: { mode: 'required' } }],
    },
  })

  const service = Fastify({ logger: false, forceCloseConnections: true })
  t.teardown(() => service.close())
  registerErrorHandling(service)
  await service.register(operations, { component: 'profile' })
  await service.register(auth, {
    issuers: [{ issuer: issuer.url, audiences: [issuer.audience] }],
    gateway: { issuer: gw.config.GATEWAY_URL, jwksUri: `${gw.url}${GATEWAY_JWKS_PATH}`, audience: 'profile' },
  })
  service.get('/me', async (request) => ({
    sub: request.identity?.subject,
    source: request.identity?.source,
  }))
  await service.listen({ host: '127.0.0.1', port: servicePort })
  await service.auth.ready()

  const token = await issuer.mint({ sub: 'user-9' })
  const res = await request(`${gw.url}/api/profile/me`, { headers: { authorization: `Bearer ${token}` } })
  t.equal(res.statusCode, 200)
  t.same(
    await res.body.json(),
    { sub: 'user-9', source: 'assertion' },
    'the service knows the caller from the assertion addressed to it; no raw token travelled',
  )

  const forged = await request(`${serviceUrl}/me`, {
    headers: {
      'x-keygate-assertion': 'eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhZG1pbiJ9.c2ln',
      'x-keygate-subject': 'admin',
    },
  })
  t.equal(forged.statusCode, 401, 'past the gateway, forged identity headers get nothing')
  await forged.body.dump()
})

t.test('hop-by-hop headers, and those Connection lists, stay on the client’s hop', async (t) => {
  const { gw } = await startEchoGateway(t)

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
})

t.test('the forwarding chain keeps only what trusted hops said', async (t) => {
  // GATEWAY_TRUST_PROXY names the loopback peer (none is believed by default).
  const { issuer, gw: trusting } = await startEchoGateway(t, { env: { GATEWAY_TRUST_PROXY: '127.0.0.1' } })
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

  const { gw: distrustful } = await startEchoGateway(t, { issuer, env: { GATEWAY_TRUST_PROXY: '10.1.2.3' } })
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

t.test('a credential addressed to one service is refused at the gateway', async (t) => {
  const { issuer, gw, upstream } = await setup(t)
  const before = upstream.requests
  const forProfile = await issuer.mint({ aud: 'keygate-profile' })
  const res = await request(`${gw.url}/required/x`, { headers: { authorization: `Bearer ${forProfile}` } })
  t.equal(res.statusCode, 401)
  t.match(await res.body.json(), { code: 'KG_TOKEN_AUDIENCE_INVALID' })
  const api = await issuer.mint()
  const echo = await echoOf(`${gw.url}/optional/x`, { authorization: `Bearer ${api}` })
  const assertion = echo.headers[ASSERTION_HEADER] as string
  const replayed = await echoOf(`${gw.url}/optional/x`, { [ASSERTION_HEADER]: assertion })
  t.not(replayed.headers[ASSERTION_HEADER], assertion, 'a captured assertion never crosses the gateway again')
  t.equal(upstream.requests, before + 2, 'the refused token reached no upstream')
})
