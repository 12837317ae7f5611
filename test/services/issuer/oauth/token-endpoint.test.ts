import t from 'tap'
import { claimsOf, headerOf, login, register } from '../fixtures.js'
import { startGatewayKeys } from '../../../helpers/gateway-keys.js'
import {
  ACCESS_TOKEN_TYPE,
  EXCHANGE,
  JWT_TOKEN_TYPE,
  basic,
  gatewayAssertionFor,
  oauthFixture,
  postForm,
  registerClient,
} from './helpers.js'

t.test('client_credentials with client_secret_basic: an RFC 9068 token for the client itself', async (t) => {
  const f = await oauthFixture(t)
  const client = await registerClient(f, { name: 'billing', scopes: ['orders:read'], audiences: ['orders'] })
  t.match(client.client_id, /^kgc_/)
  t.type(client.client_secret, 'string')
  const res = await postForm(
    f.app,
    '/oauth/token',
    { grant_type: 'client_credentials' },
    basic(client.client_id, client.client_secret!),
  )
  t.equal(res.statusCode, 200, res.body)
  t.equal(res.headers['cache-control'], 'no-store')
  const body = res.json()
  t.equal(body.token_type, 'Bearer')
  t.equal(body.scope, 'orders:read')
  t.ok(body.expires_in > 0)
  t.equal(headerOf(body.access_token).typ, 'at+jwt')
  const claims = claimsOf(body.access_token)
  t.equal(claims.sub, client.client_id)
  t.equal(claims.client_id, client.client_id)
  t.equal(claims.aud, 'orders')
  t.equal(claims.iss, 'http://issuer.test')
  t.type(claims.jti, 'string')
  t.notOk('sid' in claims, 'no session')
})

t.test('client_secret_post, scope and resource chosen among the allowed ones', async (t) => {
  const f = await oauthFixture(t)
  const c = await registerClient(f, {
    name: 'reports',
    scopes: ['a', 'b', 'c'],
    audiences: ['profile', 'orders'],
  })
  const auth = { client_id: c.client_id, client_secret: c.client_secret! }
  const ok = await postForm(f.app, '/oauth/token', {
    ...auth,
    grant_type: 'client_credentials',
    scope: 'a c',
    resource: ['profile', 'orders'],
  })
  t.equal(ok.statusCode, 200, ok.body)
  t.equal(ok.json().scope, 'a c')
  t.same(claimsOf(ok.json().access_token).aud, ['profile', 'orders'])

  const cases: Array<[string, Record<string, string | string[]>, number, string]> = [
    ['no target with two audiences', { grant_type: 'client_credentials' }, 400, 'invalid_target'],
    ['a foreign resource', { grant_type: 'client_credentials', resource: 'files' }, 400, 'invalid_target'],
    [
      'a wider scope',
      { grant_type: 'client_credentials', resource: 'orders', scope: 'a z' },
      400,
      'invalid_scope',
    ],
    ['an unknown grant', { grant_type: 'password', resource: 'orders' }, 400, 'unsupported_grant_type'],
    ['no grant type', { resource: 'orders' }, 400, 'invalid_request'],
    ['an exchange it may not do', { grant_type: EXCHANGE, resource: 'orders' }, 400, 'unauthorized_client'],
  ]
  for (const [name, form, status, error] of cases) {
    const res = await postForm(f.app, '/oauth/token', { ...auth, ...form })
    t.equal(res.statusCode, status, name)
    t.equal(res.json().error, error, name)
    t.type(res.json().error_description, 'string', `${name}: error_description`)
    t.equal(res.headers['cache-control'], 'no-store', `${name}: no-store`)
  }
})

t.test('client authentication failures are invalid_client and throttled', async (t) => {
  const f = await oauthFixture(t, { LOGIN_MAX_FAILURES_PER_ACCOUNT_AND_ADDRESS: '3' })
  const c = await registerClient(f, { name: 'x', scopes: ['a'], audiences: ['orders'] })
  const wrong = await postForm(
    f.app,
    '/oauth/token',
    { grant_type: 'client_credentials' },
    basic(c.client_id, 'wrong'),
  )
  t.equal(wrong.statusCode, 401)
  t.equal(wrong.json().error, 'invalid_client')
  t.match(wrong.headers['www-authenticate'], /^Basic /)
  const unknown = await postForm(f.app, '/oauth/token', {
    grant_type: 'client_credentials',
    client_id: 'kgc_nobody',
    client_secret: 'x',
  })
  t.equal(unknown.statusCode, 401)
  t.equal(unknown.json().error, 'invalid_client')
  const none = await postForm(f.app, '/oauth/token', { grant_type: 'client_credentials' })
  t.equal(none.statusCode, 401)
  const two = await postForm(
    f.app,
    '/oauth/token',
    { grant_type: 'client_credentials', client_id: c.client_id, client_secret: c.client_secret! },
    basic(c.client_id, c.client_secret!),
  )
  t.equal(two.statusCode, 400, 'two methods at once')
  t.equal(two.json().error, 'invalid_request')
  // One failure so far for this client from this address; the third reaches the limit.
  for (let i = 0; i < 2; i++) {
    await postForm(f.app, '/oauth/token', { grant_type: 'client_credentials' }, basic(c.client_id, 'wrong'))
  }
  const throttled = await postForm(
    f.app,
    '/oauth/token',
    { grant_type: 'client_credentials' },
    basic(c.client_id, c.client_secret!),
  )
  t.equal(throttled.statusCode, 429, 'even the right secret waits once throttled')
  t.ok(Number(throttled.headers['retry-after']) >= 1)
  f.clock.advance(16 * 60_000)
  const after = await postForm(
    f.app,
    '/oauth/token',
    { grant_type: 'client_credentials' },
    basic(c.client_id, c.client_secret!),
  )
  t.equal(after.statusCode, 200, 'the back-off ends')
  for (const secret of [c.client_secret!, after.json().access_token]) {
    t.same(f.logs.find(secret), [], 'no secret or token in the logs')
  }
})

t.test('bad forms: repeated parameters, JSON, huge bodies', async (t) => {
  const f = await oauthFixture(t)
  const c = await registerClient(f, { name: 'x', scopes: ['a'], audiences: ['orders'] })
  const repeated = await f.app.inject({
    method: 'POST',
    url: '/oauth/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...basic(c.client_id, c.client_secret!) },
    payload: 'grant_type=client_credentials&grant_type=client_credentials',
  })
  t.equal(repeated.statusCode, 400)
  t.equal(repeated.json().error, 'invalid_request')
  const json = await f.app.inject({
    method: 'POST',
    url: '/oauth/token',
    headers: basic(c.client_id, c.client_secret!),
    payload: { grant_type: 'client_credentials' },
  })
  t.equal(json.statusCode, 415)
  t.equal(json.json().error, 'invalid_request')
  const huge = await f.app.inject({
    method: 'POST',
    url: '/oauth/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: `grant_type=client_credentials&x=${'a'.repeat(100_000)}`,
  })
  t.equal(huge.statusCode, 413)
  const empty = await f.app.inject({ method: 'POST', url: '/oauth/token' })
  t.ok([400, 401].includes(empty.statusCode), `no body: ${empty.statusCode}`)
})

t.test('token exchange: sub is the user, act the client, narrower scope and audience', async (t) => {
  const f = await oauthFixture(t)
  await register(f.app, 'alice@example.com')
  const alice = await login(f.app, 'alice@example.com')
  const orders = await registerClient(f, {
    name: 'orders service',
    grant_types: [EXCHANGE],
    scopes: ['profile', 'payments'],
    audiences: ['keygate-profile'],
  })
  const auth = basic(orders.client_id, orders.client_secret!)
  const exchange = (form: Record<string, string>) =>
    postForm(
      f.app,
      '/oauth/token',
      { grant_type: EXCHANGE, subject_token_type: ACCESS_TOKEN_TYPE, ...form },
      auth,
    )
  const res = await exchange({ subject_token: alice.accessToken, audience: 'keygate-profile' })
  t.equal(res.statusCode, 200, res.body)
  const body = res.json()
  t.equal(body.issued_token_type, ACCESS_TOKEN_TYPE)
  t.equal(body.scope, 'profile', "the user's scope ∩ the client's")
  const claims = claimsOf(body.access_token)
  const subject = claimsOf(alice.accessToken)
  t.equal(claims.sub, subject.sub)
  t.equal(claims.sid, subject.sid)
  t.equal(claims.client_id, orders.client_id)
  t.same(claims.act, { sub: orders.client_id })
  t.equal(claims.aud, 'keygate-profile')
  t.ok((claims.exp as number) <= (subject.exp as number), 'never outlives the subject token')
  t.ok(body.expires_in <= 300, 'short-lived (TOKEN_EXCHANGE_TTL)')

  // The exchanged token exchanged again: the actors nest.
  const relay = await registerClient(f, {
    name: 'relay',
    grant_types: [EXCHANGE],
    scopes: ['profile'],
    audiences: ['keygate-profile'],
  })
  const nested = await postForm(
    f.app,
    '/oauth/token',
    { grant_type: EXCHANGE, subject_token_type: ACCESS_TOKEN_TYPE, subject_token: body.access_token },
    basic(relay.client_id, relay.client_secret!),
  )
  t.equal(nested.statusCode, 200, nested.body)
  t.same(claimsOf(nested.json().access_token).act, { sub: relay.client_id, act: { sub: orders.client_id } })

  const refusals: Array<[string, Record<string, string>, string]> = [
    ['a wider scope', { subject_token: alice.accessToken, scope: 'payments' }, 'invalid_scope'],
    ['a foreign audience', { subject_token: alice.accessToken, audience: 'keygate-files' }, 'invalid_target'],
    ['garbage', { subject_token: 'not.a.token' }, 'invalid_grant'],
  ]
  for (const [name, form, error] of refusals) {
    const r = await exchange(form)
    t.equal(r.statusCode, 400, name)
    t.equal(r.json().error, error, name)
  }
  const noType = await postForm(
    f.app,
    '/oauth/token',
    { grant_type: EXCHANGE, subject_token: alice.accessToken },
    auth,
  )
  t.equal(noType.json().error, 'invalid_request')

  // A client's own token is no user's session token.
  const cc = await registerClient(f, { name: 'cc', scopes: ['profile'], audiences: ['keygate-profile'] })
  const own = await postForm(
    f.app,
    '/oauth/token',
    { grant_type: 'client_credentials' },
    basic(cc.client_id, cc.client_secret!),
  )
  const notUser = await exchange({ subject_token: own.json().access_token })
  t.equal(notUser.json().error, 'invalid_grant')

  // Logout revokes the session: the subject token and every exchanged token with it.
  const logout = await f.app.inject({
    method: 'POST',
    url: '/auth/logout',
    headers: { 'x-csrf-token': alice.csrfToken },
    cookies: { kg_refresh: alice.refreshToken },
  })
  t.equal(logout.statusCode, 204, logout.body)
  const revoked = await exchange({ subject_token: alice.accessToken })
  t.equal(revoked.json().error, 'invalid_grant', 'a revoked subject token')
})

t.test('OAUTH_RATE_LIMIT counts requests per address at each endpoint', async (t) => {
  const f = await oauthFixture(t, { OAUTH_RATE_LIMIT: '2/1m' })
  const c = await registerClient(f, { name: 'x', scopes: ['a'], audiences: ['orders'] })
  const token = () =>
    postForm(
      f.app,
      '/oauth/token',
      { grant_type: 'client_credentials' },
      basic(c.client_id, c.client_secret!),
    )
  t.equal((await token()).statusCode, 200)
  t.equal((await token()).statusCode, 200)
  const limited = await token()
  t.equal(limited.statusCode, 429)
  t.equal(limited.json().code, 'KG_RATE_LIMITED')
  t.ok(Number(limited.headers['retry-after']) >= 1)
  const revoke = await postForm(f.app, '/oauth/revoke', { token: 'x' }, basic(c.client_id, c.client_secret!))
  t.equal(revoke.statusCode, 200, 'each endpoint counts on its own')
})

t.test(
  'token exchange of a gateway assertion: only by the client of the service it is addressed to',
  async (t) => {
    const gateway = await startGatewayKeys(t, { audience: 'orders' })
    const f = await oauthFixture(t, { GATEWAY_URL: gateway.url })
    await register(f.app, 'alice@example.com')
    const alice = await login(f.app, 'alice@example.com')
    const at = claimsOf(alice.accessToken)
    const assertionOf = (claims: Record<string, unknown> = {}) =>
      gatewayAssertionFor(gateway, alice.accessToken, claims)
    const client = async (name: string, service?: string) => {
      const c = await registerClient(f, {
        name,
        grant_types: [EXCHANGE],
        scopes: ['profile'],
        audiences: ['keygate-profile'],
        ...(service === undefined ? {} : { service }),
      })
      t.equal(c.service, service, 'the client view names its service')
      return basic(c.client_id, c.client_secret!)
    }
    const orders = await client('orders', 'orders')
    const files = await client('files', 'files')
    const plain = await client('plain')
    const exchange = (auth: Record<string, string>, subject: string, type = JWT_TOKEN_TYPE) =>
      postForm(
        f.app,
        '/oauth/token',
        { grant_type: EXCHANGE, subject_token_type: type, subject_token: subject },
        auth,
      )

    const assertion = assertionOf()
    const ok = await exchange(orders, assertion)
    t.equal(ok.statusCode, 200, ok.body)
    const claims = claimsOf(ok.json().access_token)
    t.equal(claims.sub, at.sub)
    t.equal(claims.sid, at.sid)
    t.equal(claims.aud, 'keygate-profile', 'for profile alone')
    t.match(claims.act, { sub: String }, 'orders is the actor')
    t.ok((claims.exp as number) <= (claimsOf(assertion).exp as number), 'never outlives the assertion')

    for (const [name, auth] of [
      ['another service', files],
      ['a client that is no service', plain],
    ] as const) {
      const r = await exchange(auth, assertion)
      t.equal(r.statusCode, 400, name)
      t.equal(r.json().error, 'invalid_grant', name)
    }
    t.equal(
      (await exchange(orders, assertion, ACCESS_TOKEN_TYPE)).json().error,
      'invalid_grant',
      'typed as what it is not',
    )
    t.equal(
      (await exchange(orders, alice.accessToken)).json().error,
      'invalid_grant',
      'an access token is no assertion',
    )
    const foreign = assertionOf({ at_iss: 'https://elsewhere.example' })
    t.equal((await exchange(orders, foreign)).json().error, 'invalid_grant', "another issuer's user")
    const forged = assertion.slice(0, -4) + (assertion.endsWith('AAAA') ? 'BBBB' : 'AAAA')
    t.equal((await exchange(orders, forged)).json().error, 'invalid_grant', 'a bad signature')

    // The user's revocations apply to the assertion as to the token it vouches for.
    const logoutAll = await f.app.inject({
      method: 'POST',
      url: '/auth/logout-all',
      headers: { authorization: `Bearer ${alice.accessToken}` },
    })
    t.equal(logoutAll.statusCode, 204)
    const revoked = await exchange(orders, assertionOf())
    t.equal(revoked.json().error, 'invalid_grant', 'a revoked user’s assertion yields no token')
  },
)
