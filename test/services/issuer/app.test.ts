import { writeFileSync } from 'node:fs'
import t from 'tap'
import { KeyFile } from '../../../services/issuer/keys/key-file.js'
import { postgresUnavailable, testDatabase } from '../../helpers/postgres.js'
import {
  assertNoSecretsLogged,
  bearer,
  issuerFixture,
  login,
  PASSWORD,
  postgresEnv,
  refresh,
  refreshRequest,
  register,
} from './fixtures.js'

t.test('health, readiness and metrics', async (t) => {
  const { app } = await issuerFixture(t)
  t.same((await app.inject('/healthz')).json(), { status: 'ok' })
  const ready = await app.operations.inject('/readyz')
  t.equal(ready.statusCode, 200)
  t.match(ready.json(), { status: 'ready', checks: { 'signing-keys': true, store: true } })
  await register(app, 'm@example.com')
  await login(app, 'm@example.com')
  const metrics = await app.operations.inject('/metrics')
  t.equal(metrics.statusCode, 200)
  t.match(metrics.body, /keygate_issuer_keys\{state="active",component="issuer"\} 1/)
  t.match(metrics.body, /keygate_issuer_keys\{state="next",component="issuer"\} 1/)
  t.match(metrics.body, /keygate_issuer_keys\{state="retired",component="issuer"\} 0/)
  t.match(metrics.body, /keygate_issuer_logins_total\{outcome="success",component="issuer"\} 1/)
  t.match(metrics.body, /keygate_issuer_tokens_issued_total\{component="issuer"\} 1/)
  t.match(metrics.body, /keygate_issuer_refreshes_total\{outcome="rotated",component="issuer"\} 0/)
})

t.test('not ready while the store does not answer', async (t) => {
  const { app } = await issuerFixture(t)
  const store = app.issuer.store
  await store.close()
  const res = await app.operations.inject('/readyz')
  t.equal(res.statusCode, 503)
  t.match(res.json(), { status: 'not_ready', checks: { store: 'the database does not answer' } })
})

t.test('bad input gets a 4xx with a stable code, never a 500', async (t) => {
  const { app } = await issuerFixture(t)
  const post = (url: string, payload: string, headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url, payload, headers: { 'content-type': 'application/json', ...headers } })
  const cases: Array<[Promise<{ statusCode: number; json(): { code: string } }>, number, string, string]> = [
    [post('/auth/login', '{"email":'), 400, 'KG_MALFORMED_JSON', 'malformed JSON'],
    [post('/auth/login', ''), 400, 'KG_MALFORMED_JSON', 'empty JSON body'],
    [
      post('/auth/login', 'email=a&password=b', { 'content-type': 'application/x-www-form-urlencoded' }),
      415,
      'KG_UNSUPPORTED_MEDIA_TYPE',
      'form body',
    ],
    [
      post('/auth/login', '{}', { 'content-type': 'text/plain' }),
      415,
      'KG_UNSUPPORTED_MEDIA_TYPE',
      'text body',
    ],
    [
      post('/auth/login', JSON.stringify({ email: 'a@example.com', password: 'x'.repeat(70_000) })),
      413,
      'KG_PAYLOAD_TOO_LARGE',
      'oversized body',
    ],
    [
      post('/auth/login', JSON.stringify({ email: 'a@example.com', password: 'x', remember: true })),
      400,
      'KG_INVALID_REQUEST',
      'unknown field',
    ],
    [post('/auth/login', '[]'), 400, 'KG_INVALID_REQUEST', 'array body'],
    [post('/auth/login', 'null'), 400, 'KG_INVALID_REQUEST', 'null body'],
    [
      post('/auth/register', JSON.stringify({ email: ['a'], password: PASSWORD })),
      400,
      'KG_INVALID_REQUEST',
      'wrong type',
    ],
    [post('/auth/refresh', '{"unexpected":1}'), 400, 'KG_INVALID_REQUEST', 'refresh with a body field'],
    [app.inject({ method: 'GET', url: '/auth/login' }), 404, 'KG_NOT_FOUND', 'wrong method'],
    [app.inject({ method: 'GET', url: '/nowhere' }), 404, 'KG_NOT_FOUND', 'unknown path'],
  ]
  for (const [pending, status, code, why] of cases) {
    const res = await pending
    t.equal(res.statusCode, status, why)
    t.equal(res.json().code, code, why)
  }
  const empty = await app.inject({ method: 'POST', url: '/auth/refresh' })
  t.equal(empty.statusCode, 401, 'refresh without a body is fine (and without a cookie, refused)')
  const emptyObject = await post('/auth/refresh', '{}')
  t.equal(emptyObject.statusCode, 401, 'an empty JSON object is tolerated')
})

t.test('no token, refresh token, CSRF token or password ever reaches the logs', async (t) => {
  const { app, logs } = await issuerFixture(t)
  await register(app, 'secret@example.com')
  const s1 = await login(app, 'secret@example.com')
  const s2 = await refresh(app, s1)
  await refreshRequest(app, s1.refreshToken, 'forged-csrf-token-value')
  await app.inject({
    method: 'POST',
    url: '/auth/login',
    payload: { email: 'secret@example.com', password: 'a wrong password guess' },
  })
  await app.inject({
    method: 'POST',
    url: '/auth/login',
    payload: '{"password":"half-json-secret',
    headers: { 'content-type': 'application/json' },
  })
  await app.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(`${s2.accessToken}x`) })
  await app.inject({ url: `/admin/users?token=${s2.accessToken}`, headers: bearer(s2.accessToken) })
  await app.inject({
    method: 'POST',
    url: '/auth/password',
    headers: bearer(s2.accessToken),
    payload: { current_password: PASSWORD, new_password: 'brand new password' },
  })
  t.ok(logs.find('incoming request').length > 5, 'requests were logged')
  assertNoSecretsLogged(t, logs, [
    PASSWORD,
    'a wrong password guess',
    'half-json-secret',
    'brand new password',
    'forged-csrf-token-value',
    s1.accessToken,
    s1.accessToken.split('.')[2]!,
    s2.accessToken,
    s1.refreshToken,
    s2.refreshToken,
    s1.csrfToken,
  ])
})

t.test('a damaged key file stops the start with a message naming it', async (t) => {
  const { app, dir } = await issuerFixture(t)
  await app.close()
  const file = new KeyFile(`${dir}/keys`)
  writeFileSync(file.path, '{"version":2}')
  await t.rejects(issuerFixture(t, { dir }), { message: /keyset\.json is invalid: unknown version/ })
})

t.test(
  'the same issuer runs on PostgreSQL when DATABASE_URL says so',
  { skip: await postgresUnavailable() },
  async (t) => {
    const db = await testDatabase(t)
    const { app } = await issuerFixture(t, { env: postgresEnv(db.url) })
    await register(app, 'pg@example.com')
    const s1 = await login(app, 'pg@example.com')
    const [a, b] = await Promise.all([refresh(app, s1), refresh(app, s1)])
    t.ok(a.accessToken && b.accessToken, 'concurrent refreshes (grace) on PostgreSQL')
    const res = await app.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(a.accessToken) })
    t.equal(res.statusCode, 204)
    t.match(await app.issuer.store.listRevocations(0, 10), [{ type: 'user' }])
    t.match((await app.operations.inject('/readyz')).json(), { checks: { store: true } })
  },
)

t.test('JSON answers are no-store and nosniff, the JWKS keeps its public max-age', async (t) => {
  const { app } = await issuerFixture(t)
  await register(app, 'h@example.com')
  const answers = {
    'a login': await app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { email: 'h@example.com', password: PASSWORD },
    }),
    'a refused login': await app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { email: 'h@example.com', password: 'wrong password' },
    }),
    '/healthz': await app.inject('/healthz'),
    'a malformed URL': await app.inject('/auth/%zz'),
  }
  t.equal(answers['a malformed URL'].json().code, 'KG_MALFORMED_URL')
  for (const [what, res] of Object.entries(answers)) {
    t.equal(res.headers['cache-control'], 'no-store', `${what} (${res.statusCode}): no-store`)
    t.equal(res.headers['x-content-type-options'], 'nosniff', `${what}: nosniff`)
  }
  const jwks = await app.inject('/.well-known/jwks.json')
  t.match(jwks.headers['cache-control'], /^public, max-age=\d+$/, "the JWKS's own Cache-Control")
  t.equal(jwks.headers['x-content-type-options'], 'nosniff')
})
