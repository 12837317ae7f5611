import t from 'tap'
import {
  bearer,
  claimsOf,
  cookie,
  headerOf,
  issuerFixture,
  login,
  PASSWORD,
  refresh,
  refreshRequest,
  register,
} from '../fixtures.js'

t.test('register', async (t) => {
  const { app, logs } = await issuerFixture(t)
  const res = await app.inject({
    method: 'POST',
    url: '/auth/register',
    payload: { email: '  Émile@Example.COM ', password: PASSWORD },
  })
  t.equal(res.statusCode, 202)
  t.same(res.json(), { email: 'émile@example.com' })
  t.equal(res.headers['cache-control'], 'no-store')
  const created = await app.issuer.store.findUserByEmail('émile@example.com')
  t.ok(created, 'the account exists')

  // A taken address is answered exactly like a new one (issue 13: registration must not reveal accounts);
  // it used to be 409 KG_EMAIL_TAKEN. The account and its password are untouched.
  const taken = await app.inject({
    method: 'POST',
    url: '/auth/register',
    payload: { email: 'émile@example.com', password: 'another password' },
  })
  t.equal(taken.statusCode, res.statusCode)
  t.same(taken.json(), res.json())
  t.same(Object.keys(taken.headers).sort(), Object.keys(res.headers).sort(), 'the same headers')
  t.equal((await app.issuer.store.findUserByEmail('émile@example.com'))!.passwordHash, created!.passwordHash)
  t.equal((await login(app, 'émile@example.com')).response.statusCode, 200, 'the owner still logs in')
  t.equal(
    (
      await app.inject({
        method: 'POST',
        url: '/auth/login',
        payload: { email: 'émile@example.com', password: 'another password' },
      })
    ).statusCode,
    401,
    'the second registration’s password does not',
  )
  t.equal(
    logs.find('registration for an existing account').length,
    1,
    'the attempt is logged for the operator',
  )
  t.same(logs.find('another password'), [], 'without the password')

  for (const [payload, why] of [
    [{ email: 'not-an-email', password: PASSWORD }, 'bad e-mail'],
    [{ email: 'a@example.com', password: 'short' }, 'password under 8 characters'],
    [{ email: 'a@example.com', password: 'x'.repeat(129) }, 'password over 128 characters'],
    [{ email: `${'a'.repeat(250)}@example.com`, password: PASSWORD }, 'e-mail over 254 characters'],
    [{ email: 'a@example.com' }, 'missing password'],
    [{ email: 'a@example.com', password: PASSWORD, admin: true }, 'unknown field'],
    [{ email: 42, password: PASSWORD }, 'wrong type'],
  ] as const) {
    const bad = await app.inject({ method: 'POST', url: '/auth/register', payload })
    t.equal(bad.statusCode, 400, why)
    t.equal(bad.json().code, 'KG_INVALID_REQUEST', why)
  }
  t.ok(
    (
      await app.inject({
        method: 'POST',
        url: '/auth/register',
        payload: { email: 'b@example.com', password: '€'.repeat(8) },
      })
    ).statusCode === 202,
    'the length counts characters, not bytes',
  )
})

t.test('closed registration', async (t) => {
  const { app } = await issuerFixture(t, { env: { REGISTRATION: 'closed' } })
  const res = await app.inject({
    method: 'POST',
    url: '/auth/register',
    payload: { email: 'a@example.com', password: PASSWORD },
  })
  t.equal(res.statusCode, 403)
  t.equal(res.json().code, 'KG_REGISTRATION_CLOSED')
})

t.test('login: tokens per RFC 9068 and the session cookies', async (t) => {
  const { app, clock } = await issuerFixture(t)
  const id = await register(app, 'login@example.com')
  const res = await app.inject({
    method: 'POST',
    url: '/auth/login',
    payload: { email: 'LOGIN@example.com', password: PASSWORD },
  })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['cache-control'], 'no-store')
  t.equal(res.headers.pragma, 'no-cache')
  const body = res.json()
  t.same(Object.keys(body).sort(), ['access_token', 'csrf_token', 'expires_in', 'token_type'])
  t.equal(body.token_type, 'Bearer')
  t.equal(body.expires_in, 900)

  t.same(headerOf(body.access_token), { alg: 'RS256', typ: 'at+jwt', kid: app.issuer.keys.signingKey().kid })
  const claims = claimsOf(body.access_token)
  // iat carries milliseconds, so user-wide revocations and logins in one second are told apart.
  const iat = clock.now() / 1000
  t.match(claims, {
    iss: 'http://issuer.test',
    sub: id,
    aud: 'keygate-api',
    iat,
    exp: Math.floor(iat) + 900,
    jti: /^[0-9a-f-]{36}$/,
    client_id: 'keygate-web',
    sid: /^[0-9a-f-]{36}$/,
    roles: ['user'],
    scope: 'openid profile orders files',
  })
  t.notOk(JSON.stringify(claims).includes('login@example.com'), 'no e-mail in the token')

  const refreshCookie = cookie(res, 'kg_refresh')!
  t.match(refreshCookie, {
    httpOnly: true,
    secure: true,
    sameSite: 'Strict',
    path: '/auth',
    maxAge: 30 * 24 * 3600,
  })
  t.equal(refreshCookie.domain, undefined, 'no Domain')
  t.match(refreshCookie.value, /^[A-Za-z0-9_-]{43}$/, '256 bits, base64url')
  const csrfCookie = cookie(res, 'kg_csrf')!
  t.match(csrfCookie, { secure: true, sameSite: 'Strict', path: '/', value: body.csrf_token })
  t.notOk(csrfCookie.httpOnly, 'the page reads the CSRF cookie')
})

t.test('bad credentials: the same answer whether or not the account exists', async (t) => {
  const { app } = await issuerFixture(t)
  await register(app, 'exists@example.com')
  const wrong = await app.inject({
    method: 'POST',
    url: '/auth/login',
    payload: { email: 'exists@example.com', password: 'wrong password' },
  })
  const unknown = await app.inject({
    method: 'POST',
    url: '/auth/login',
    payload: { email: 'nobody@example.com', password: 'wrong password' },
  })
  const garbage = await app.inject({
    method: 'POST',
    url: '/auth/login',
    payload: { email: 'not an e-mail', password: 'x' },
  })
  for (const res of [wrong, unknown, garbage]) {
    t.equal(res.statusCode, 401)
    t.same(res.json(), {
      error: 'invalid_grant',
      code: 'KG_INVALID_CREDENTIALS',
      message: 'Invalid e-mail or password',
    })
    t.same(res.cookies, [])
  }
  t.equal(wrong.body, unknown.body)
})

t.test('logout revokes the session and clears the cookies', async (t) => {
  const { app } = await issuerFixture(t)
  await register(app, 'out@example.com')
  const s = await login(app, 'out@example.com')
  const res = await app.inject({
    method: 'POST',
    url: '/auth/logout',
    headers: { 'x-csrf-token': s.csrfToken },
    cookies: { kg_refresh: s.refreshToken },
  })
  t.equal(res.statusCode, 204)
  t.equal(res.headers['cache-control'], 'no-store')
  for (const name of ['kg_refresh', 'kg_csrf']) {
    const c = cookie(res, name)!
    t.equal(c.value, '', `${name} cleared`)
    t.ok(c.expires!.getTime() <= Date.now(), `${name} expired`)
  }
  t.equal(cookie(res, 'kg_refresh')!.path, '/auth')
  const after = await refreshRequest(app, s.refreshToken, s.csrfToken)
  t.equal(after.statusCode, 401)
  t.equal(after.json().code, 'KG_REFRESH_INVALID')

  const again = await app.inject({ method: 'POST', url: '/auth/logout' })
  t.equal(again.statusCode, 204, 'logging out without a session cookie is fine')
  const gone = await app.inject({
    method: 'POST',
    url: '/auth/logout',
    headers: { 'x-csrf-token': s.csrfToken },
    cookies: { kg_refresh: 'unknown-token' },
  })
  t.equal(gone.statusCode, 204, 'an unknown cookie is simply cleared')
})

t.test('logout-all revokes every session of the user', async (t) => {
  const { app, clock } = await issuerFixture(t)
  await register(app, 'all@example.com')
  await register(app, 'other@example.com')
  const a = await login(app, 'all@example.com')
  const b = await login(app, 'all@example.com')
  const other = await login(app, 'other@example.com')

  const anonymous = await app.inject({ method: 'POST', url: '/auth/logout-all' })
  t.equal(anonymous.statusCode, 401)
  t.match(anonymous.headers['www-authenticate'], /^Bearer realm=/)

  const res = await app.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(a.accessToken) })
  t.equal(res.statusCode, 204)
  for (const s of [a, b]) t.equal((await refreshRequest(app, s.refreshToken, s.csrfToken)).statusCode, 401)
  t.equal((await refresh(app, other)).accessToken.length > 0, true, "other users' sessions live on")

  const reused = await app.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(b.accessToken) })
  t.equal(reused.statusCode, 401, "the issuer itself refuses the revoked sessions' access tokens at once")
  t.equal(reused.json().code, 'KG_TOKEN_REVOKED')

  clock.advance(1000)
  const fresh = await login(app, 'all@example.com')
  t.equal(
    (await app.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(fresh.accessToken) }))
      .statusCode,
    204,
    'a later login works',
  )
  const events = await app.issuer.store.listRevocations(0, 100)
  t.same(
    events.map((e) => e.type),
    ['user', 'user'],
    'each logout-all is one user event',
  )
})

t.test('password change', async (t) => {
  const { app, clock } = await issuerFixture(t)
  await register(app, 'pw@example.com')
  const s = await login(app, 'pw@example.com')
  const change = (current_password: string, new_password: string, token = s.accessToken) =>
    app.inject({
      method: 'POST',
      url: '/auth/password',
      headers: bearer(token),
      payload: { current_password, new_password },
    })

  t.equal((await app.inject({ method: 'POST', url: '/auth/password', payload: {} })).statusCode, 401)
  const wrong = await change('not my password', 'new password 1')
  t.equal(wrong.statusCode, 401)
  t.equal(wrong.json().code, 'KG_INVALID_CREDENTIALS')
  const weak = await change(PASSWORD, 'short')
  t.equal(weak.statusCode, 400)

  const ok = await change(PASSWORD, 'new password 1')
  t.equal(ok.statusCode, 204)
  t.equal((await refreshRequest(app, s.refreshToken, s.csrfToken)).statusCode, 401, 'every session revoked')
  const old = await app.inject({
    method: 'POST',
    url: '/auth/login',
    payload: { email: 'pw@example.com', password: PASSWORD },
  })
  t.equal(old.statusCode, 401, 'the old password no longer works')
  clock.advance(1000)
  t.ok((await login(app, 'pw@example.com', 'new password 1')).accessToken)
})
