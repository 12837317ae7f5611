import { request as httpRequest } from 'node:http'
import { once } from 'node:events'
import { type AddressInfo, createServer } from 'node:net'
import Fastify from 'fastify'
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose'
import t, { type Test } from 'tap'
import { request } from 'undici'
import type { RouteFile } from '../../gateway/route-file.js'
import { auth } from '../../lib/auth/index.js'
import { registerErrorHandling } from '../../lib/errors.js'
import { ASSERTION_HEADER, GATEWAY_JWKS_PATH } from '../../lib/identity/constants.js'
import { operations } from '../../lib/operations.js'
import { type Echo, startEchoUpstream, startGateway, startIssuer } from './helpers/servers.js'

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
}

async function setup(t: Test, env: Record<string, string> = {}) {
  const issuer = await startIssuer(t)
  const upstream = await startEchoUpstream(t)
  const routes: RouteFile = {
    upstreams: { svc: upstream.url },
    routes: [
      {
        prefix: '/required',
        upstream: 'svc',
        auth: { mode: 'required' },
        forward: { subject: true, roles: true, scopes: true, claims: ['roles', 'org.id', 'org', 'missing'] },
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
  }
  const gw = await startGateway(t, { issuer, routes, env })
  return { issuer, upstream, gw }
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
  t.same(await res.body.json(), { sub: 'user-9', source: 'token' }, 'token and assertion agree')

  const forged = await request(`${serviceUrl}/me`, {
    headers: {
      'x-keygate-assertion': 'eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhZG1pbiJ9.c2ln',
      'x-keygate-subject': 'admin',
    },
  })
  t.equal(forged.statusCode, 401, 'past the gateway, forged identity headers get nothing')
  await forged.body.dump()
})
