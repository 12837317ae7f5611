import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { auth, type AuthPluginOptions } from '../../../lib/auth/index.js'
import { registerErrorHandling } from '../../../lib/errors.js'
import { operations } from '../../../lib/operations.js'
import { serverOptions } from '../../../lib/server.js'
import { startGatewayKeys } from '../../helpers/gateway-keys.js'
import { captureLogs } from '../../helpers/logs.js'
import { startFeedServer } from '../../helpers/feed-server.js'
import { startTokenIssuer, type TokenIssuer } from '../../helpers/token-issuer.js'

async function build(t: Test, issuer: TokenIssuer, extra: Partial<AuthPluginOptions> = {}) {
  const logs = captureLogs()
  const app = Fastify(serverOptions({ logger: logs.logger }))
  registerErrorHandling(app)
  await app.register(operations, { component: 'test' })
  await app.register(auth, {
    issuers: [{ issuer: issuer.url, audiences: ['keygate-api'], own: true }],
    ...extra,
  })
  app.get('/me', async (req) => ({ sub: req.identity?.subject, source: req.identity?.source }))
  app.post('/me', async (req) => ({ sub: req.identity?.subject }))
  app.get('/admin', { config: { auth: { mode: 'required', roles: ['admin'] } } }, async () => 'ok')
  app.get(
    '/any',
    { config: { auth: { mode: 'required', roles: ['admin', 'ops'], match: 'any' } } },
    async () => 'ok',
  )
  app.get(
    '/scoped',
    { config: { auth: { mode: 'required', scopes: ['orders', 'files'] } } },
    async () => 'ok',
  )
  app.get('/maybe', { config: { auth: { mode: 'optional' } } }, async (req) => ({
    sub: req.identity?.subject ?? null,
  }))
  app.get('/public', { config: { auth: { mode: 'none' } } }, async (req) => ({ identity: req.identity }))
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  // The ops listener (`/readyz`, `/metrics`), as an entry point opens it; it closes with the instance.
  const opsUrl = await app.operations.listen({ host: '127.0.0.1', port: 0 })
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  return { app, url, opsUrl, logs }
}

async function call(
  url: string,
  path: string,
  headers: Record<string, string> | string[] = {},
  method = 'GET',
) {
  const res = await request(`${url}${path}`, { method: method as 'GET', headers })
  const text = await res.body.text()
  return {
    status: res.statusCode,
    challenge: res.headers['www-authenticate'] as string | undefined,
    body: text.startsWith('{') ? JSON.parse(text) : text,
  }
}

t.test('RFC 6750 answers', async (t) => {
  const issuer = await startTokenIssuer()
  t.teardown(() => issuer.close())
  const { url, app } = await build(t, issuer)
  await app.auth.ready()
  const token = await issuer.mint()
  const bearer = { authorization: `Bearer ${token}` }

  let r = await call(url, '/me')
  t.equal(r.status, 401)
  t.equal(r.challenge, 'Bearer realm="keygate"', 'no error attribute when no credential was sent')
  t.equal(r.body.code, 'KG_TOKEN_MISSING')

  r = await call(url, '/me', { authorization: 'Basic dXNlcjpwYXNz' })
  t.equal(r.status, 401, 'another scheme is no bearer token')
  t.equal(r.challenge, 'Bearer realm="keygate"')

  for (const scheme of ['Bearer', 'bearer', 'BEARER', 'bEaReR']) {
    r = await call(url, '/me', { authorization: `${scheme} ${token}` })
    t.equal(r.status, 200, `scheme ${scheme}`)
    t.equal(r.body.sub, 'user-1')
  }

  r = await call(url, '/me', ['authorization', `Bearer ${token}`, 'authorization', `Bearer ${token}`])
  t.equal(r.status, 400, 'two Authorization headers')
  t.match(r.challenge, /error="invalid_request"/)
  t.equal(r.body.code, 'KG_TOKEN_MULTIPLE')

  r = await call(url, `/me?access_token=${token}`)
  t.equal(r.status, 400, 'a token in the query string')
  t.equal(r.body.code, 'KG_TOKEN_IN_QUERY')
  r = await call(url, `/me?access_token=${token}`, bearer)
  t.equal(r.status, 400, 'even beside a valid header')

  r = await call(url, '/me', { authorization: 'Bearer two words' })
  t.equal(r.status, 400)
  r = await call(url, '/me', { authorization: 'Bearer' })
  t.equal(r.status, 400, 'the scheme alone')
  r = await call(url, '/me', { authorization: `Bearer\t${token}` })
  t.equal(r.status, 400, 'a tab instead of a space after the scheme')

  r = await call(url, '/me', { authorization: 'Bearer not.a.jwt' })
  t.equal(r.status, 401)
  t.match(r.challenge, /^Bearer realm="keygate", error="invalid_token", error_description="[^"]+"$/)
  t.equal(r.body.error, 'invalid_token')

  r = await call(url, '/admin', bearer)
  t.equal(r.status, 403)
  t.equal(
    r.challenge,
    'Bearer realm="keygate", error="insufficient_scope", error_description="The access token lacks a required role or scope", scope="admin"',
  )
  t.equal(r.body.code, 'KG_INSUFFICIENT_SCOPE')
  t.equal(
    (await call(url, '/admin', { authorization: `Bearer ${await issuer.mint({ roles: ['admin'] })}` }))
      .status,
    200,
  )
  t.equal(
    (await call(url, '/any', { authorization: `Bearer ${await issuer.mint({ roles: ['ops'] })}` })).status,
    200,
  )
  t.equal((await call(url, '/any', bearer)).status, 403)
  t.equal(
    (await call(url, '/scoped', { authorization: `Bearer ${await issuer.mint({ scope: 'orders' })}` }))
      .status,
    403,
  )
  r = await call(url, '/scoped', {
    authorization: `Bearer ${await issuer.mint({ scope: 'orders files x' })}`,
  })
  t.equal(r.status, 200)
})

t.test('optional, none and unknown routes', async (t) => {
  const issuer = await startTokenIssuer()
  t.teardown(() => issuer.close())
  const { url } = await build(t, issuer)
  const token = await issuer.mint({ sub: 'opt' })
  t.same((await call(url, '/maybe')).body, { sub: null }, 'optional without a token')
  t.same((await call(url, '/maybe', { authorization: `Bearer ${token}` })).body, { sub: 'opt' })
  t.equal(
    (await call(url, '/maybe', { authorization: 'Bearer x.y.z' })).status,
    401,
    'a bad token is refused even there',
  )
  const r = await call(url, '/public', { authorization: 'Bearer x.y.z' })
  t.equal(r.status, 200, 'none routes never look at credentials')
  t.same(r.body, { identity: null })
  t.equal((await call(url, '/nowhere')).status, 404, 'an unknown path is a 404, not a 401')
  t.equal((await call(url, '/healthz')).status, 200, 'operations routes are public')
})

t.test('a token in a cookie is no credential: only the Authorization header carries one', async (t) => {
  const issuer = await startTokenIssuer()
  t.teardown(() => issuer.close())
  const { url } = await build(t, issuer)
  const token = await issuer.mint()
  const cookie = `kg_access=${token}; access_token=${token}; kg_csrf=abc123`
  let r = await call(url, '/me', { cookie })
  t.equal(r.status, 401, 'a cookie alone authenticates nobody')
  t.equal(r.body.code, 'KG_TOKEN_MISSING')
  r = await call(url, '/me', { cookie, 'x-csrf-token': 'abc123' }, 'POST')
  t.equal(r.body.code, 'KG_TOKEN_MISSING', 'nor does it with a CSRF header')
  r = await call(url, '/me', { cookie, authorization: `Bearer ${token}` }, 'POST')
  t.equal(r.status, 200, 'beside the header it is ignored, not ambiguous')
  t.equal(r.body.sub, 'user-1')
})

t.test('services accept a gateway assertion, alone or matching the relayed token', async (t) => {
  const issuer = await startTokenIssuer()
  t.teardown(() => issuer.close())
  const gateway = await startGatewayKeys(t)
  const { url, app } = await build(t, issuer, { gateway: { issuer: gateway.url, audience: 'profile' } })
  await app.auth.ready()
  const token = await issuer.mint({ sub: 'alice', jti: 'tok-1' })
  const now = Math.floor(Date.now() / 1000)
  const about = {
    sub: 'alice',
    at_jti: 'tok-1',
    at_iat: now,
    at_iss: issuer.url,
    at_kid: issuer.keys[0]!.kid,
  }

  let r = await call(url, '/me', { 'x-keygate-assertion': gateway.assert(about) })
  t.same(r.body, { sub: 'alice', source: 'assertion' })
  r = await call(url, '/me', {
    'x-keygate-assertion': gateway.assert(about),
    authorization: `Bearer ${token}`,
  })
  t.same(r.body, { sub: 'alice', source: 'token' })
  r = await call(url, '/me', {
    'x-keygate-assertion': gateway.assert({ ...about, sub: 'mallory' }),
    authorization: `Bearer ${token}`,
  })
  t.equal(r.status, 401, 'an assertion about someone else than the token')
  t.equal(r.body.code, 'KG_ASSERTION_INVALID')
  r = await call(url, '/me', { 'x-keygate-assertion': gateway.assert({ ...about, aud: 'orders' }) })
  t.equal(r.status, 401, 'an assertion for another service')
  r = await call(url, '/me', { 'x-keygate-subject': 'alice', 'x-user-id': 'alice' })
  t.equal(r.status, 401, 'plain identity headers prove nothing')
  t.equal(r.body.code, 'KG_TOKEN_MISSING')
  r = await call(url, '/me', { authorization: `Bearer ${gateway.assert(about)}` })
  t.equal(r.status, 401, 'an assertion is not an access token')

  const { url: gatewayUrl } = await build(t, issuer)
  r = await call(gatewayUrl, '/me', { 'x-keygate-assertion': gateway.assert(about) })
  t.equal(r.status, 401, 'without a trusted gateway (at the gateway itself) assertions are ignored')
})

t.test('readiness waits for keys; rotation costs one refetch and no failure', async (t) => {
  const issuer = await startTokenIssuer()
  t.teardown(() => issuer.close())
  issuer.respond = (reply) => reply.code(503).send()
  const { url, opsUrl, app, logs } = await build(t, issuer, { jwks: { cooldownMs: 60_000 } })
  let r = await call(opsUrl, '/readyz')
  t.equal(r.status, 503)
  const token = await issuer.mint()
  r = await call(url, '/me', { authorization: `Bearer ${token}` })
  t.equal(r.status, 503, 'no keys yet: a clear temporary refusal')
  t.equal(r.body.code, 'KG_KEYS_STALE')
  issuer.respond = undefined
  await app.auth.verifier // the cache retries in the background
  await app.auth.ready()
  t.equal((await call(opsUrl, '/readyz')).status, 200)
  t.equal((await call(url, '/me', { authorization: `Bearer ${token}` })).status, 200)

  const before = issuer.jwksRequests
  await issuer.rotate()
  const fresh = await issuer.mint()
  const results = await Promise.all(
    Array.from({ length: 20 }, () => call(url, '/me', { authorization: `Bearer ${fresh}` })),
  )
  t.ok(
    results.every((x) => x.status === 200),
    'every request with the new key succeeds',
  )
  t.equal(issuer.jwksRequests, before + 1, 'one refetch for the new kid')

  const metrics = (await call(opsUrl, '/metrics')).body as string
  t.match(metrics, /keygate_auth_verifications_total\{issuer="[^"]+",result="valid",reason="fresh"/)
  t.match(metrics, /keygate_auth_verified_cache_total\{result="hit"/)
  t.match(metrics, /keygate_jwks_fetches_total\{issuer="[^"]+",outcome="error"/)
  t.match(metrics, /keygate_jwks_key_set_age_seconds/)
  t.match(metrics, /keygate_jwks_serving_stale\{[^}]*\} 0/)
  t.match(metrics, /keygate_jwks_unknown_kid_total/)
  t.equal(logs.find(token).length, 0, 'no token in the logs')
  t.equal(logs.find(fresh).length, 0)
  t.ok(logs.find('authentication refused').length > 0, 'denials are logged')
})

t.test(
  'revocations from the feed reach cached tokens; sensitive routes refuse while it is stale',
  async (t) => {
    const issuer = await startTokenIssuer()
    const feed = await startFeedServer({ heartbeatMs: 50 })
    t.teardown(async () => {
      await issuer.close()
      await feed.close()
    })
    let now = Date.now()
    const logs = captureLogs()
    const app = Fastify(serverOptions({ logger: logs.logger }))
    registerErrorHandling(app)
    await app.register(operations, { component: 'test' })
    await app.register(auth, {
      issuers: [{ issuer: issuer.url, audiences: ['keygate-api'], revocationFeed: feed.url }],
      revocationFeed: { secret: feed.secret, maxStaleMs: 30_000, silenceMs: 200 },
      now: () => now,
    })
    app.get('/me', async (req) => ({ sub: req.identity?.subject }))
    app.get('/payout', { config: { auth: { mode: 'required', sensitive: true } } }, async () => 'ok')
    t.teardown(() => app.close())
    await app.ready()
    t.equal((await app.operations.inject('/readyz')).statusCode, 503, 'not ready before the feed synced')
    await app.auth.ready()
    await app.auth.feeds.get(issuer.url)!.synced()
    t.equal((await app.operations.inject('/readyz')).statusCode, 200)

    const token = await issuer.mint({ sid: 'sess-7' })
    const headers = { authorization: `Bearer ${token}` }
    t.equal((await app.inject({ url: '/me', headers })).statusCode, 200, 'verified and now cached')
    feed.publish({ type: 'session', sessionId: 'sess-7', expiresAt: Date.now() + 900_000 })
    const deadline = Date.now() + 2_000
    let status = 200
    while (status === 200 && Date.now() < deadline) {
      // inject() never leaves the microtask queue: give the feed's socket a turn of the event loop.
      await new Promise((r) => setTimeout(r, 5))
      status = (await app.inject({ url: '/me', headers })).statusCode
    }
    t.equal(status, 401, 'the cached token is refused once the revocation arrives')
    t.equal(app.auth.verifier.cache.size, 0, 'and its cache entry was dropped')

    const other = { authorization: `Bearer ${await issuer.mint({ sid: 'sess-8' })}` }
    t.equal((await app.inject({ url: '/payout', headers: other })).statusCode, 200)
    await feed.close()
    now += 31_000
    const r = await app.inject({ url: '/payout', headers: other })
    t.equal(r.statusCode, 503, 'a sensitive route refuses while the feed is stale')
    t.equal(r.json().code, 'KG_REVOCATION_FEED_STALE')
    t.equal(
      (await app.inject({ url: '/me', headers: other })).statusCode,
      200,
      'ordinary routes keep accepting',
    )
    const metrics = (await app.operations.inject('/metrics')).body
    t.match(metrics, /keygate_revocation_events_total\{issuer="[^"]+",type="session"[^}]*\} 1/)
    t.match(metrics, /keygate_revocation_feed_silence_seconds/)
  },
)
