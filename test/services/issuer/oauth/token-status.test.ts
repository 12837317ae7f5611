import t from 'tap'
import { bearer, claimsOf, login, register } from '../fixtures.js'
import {
  ACCESS_TOKEN_TYPE,
  EXCHANGE,
  basic,
  oauthFixture,
  postForm,
  registerClient,
  storeClient,
} from './helpers.js'

const GATEWAY = 'kgc_gateway'
const GATEWAY_SECRET = 'a gateway secret of some length'

t.test(
  'introspection: active with claims, inactive for anything else, only for listed clients',
  async (t) => {
    const f = await oauthFixture(t, { OAUTH_INTROSPECTION_CLIENTS: GATEWAY })
    await storeClient(f.app, GATEWAY, GATEWAY_SECRET)
    const c = await registerClient(f, { name: 'svc', scopes: ['a'], audiences: ['orders'] })
    const token = (
      await postForm(
        f.app,
        '/oauth/token',
        { grant_type: 'client_credentials' },
        basic(c.client_id, c.client_secret!),
      )
    ).json().access_token
    const introspect = (tok: string, auth = basic(GATEWAY, GATEWAY_SECRET)) =>
      postForm(f.app, '/oauth/introspect', { token: tok }, auth)

    const active = await introspect(token)
    t.equal(active.statusCode, 200, active.body)
    t.equal(active.headers['cache-control'], 'no-store')
    t.match(active.json(), {
      active: true,
      sub: c.client_id,
      client_id: c.client_id,
      aud: 'orders',
      scope: 'a',
      iss: 'http://issuer.test',
      token_type: 'Bearer',
    })
    await register(f.app, 'bob@example.com')
    const bob = await login(f.app, 'bob@example.com')
    t.match((await introspect(bob.accessToken)).json(), { active: true, sub: claimsOf(bob.accessToken).sub })

    for (const [name, tok] of [
      ['garbage', 'garbage'],
      ['a tampered token', `${token.slice(0, -4)}AAAA`],
      ['a refresh token', bob.refreshToken],
    ] as const) {
      const res = await introspect(tok)
      t.equal(res.statusCode, 200, name)
      t.same(res.json(), { active: false }, name)
    }
    f.clock.advance(16 * 60_000)
    t.same((await introspect(token)).json(), { active: false }, 'expired')

    const notListed = await introspect(bob.accessToken, basic(c.client_id, c.client_secret!))
    t.equal(notListed.statusCode, 403)
    t.equal(notListed.json().error, 'unauthorized_client')
    const anonymous = await postForm(f.app, '/oauth/introspect', { token })
    t.equal(anonymous.statusCode, 401)
  },
)

t.test('revocation: a client revokes its own token; always 200; the feed carries it', async (t) => {
  const f = await oauthFixture(t, { OAUTH_INTROSPECTION_CLIENTS: GATEWAY })
  await storeClient(f.app, GATEWAY, GATEWAY_SECRET)
  const a = await registerClient(f, { name: 'a', scopes: ['s'], audiences: ['keygate-api'] })
  const b = await registerClient(f, { name: 'b', scopes: ['s'], audiences: ['keygate-api'] })
  const tokenOf = async (c: typeof a) =>
    (
      await postForm(
        f.app,
        '/oauth/token',
        { grant_type: 'client_credentials' },
        basic(c.client_id, c.client_secret!),
      )
    ).json().access_token as string
  const tokenA = await tokenOf(a)
  const tokenB = await tokenOf(b)
  const revoke = (token: string, c: typeof a) =>
    postForm(
      f.app,
      '/oauth/revoke',
      { token, token_type_hint: 'access_token' },
      basic(c.client_id, c.client_secret!),
    )
  const cursor = await f.app.issuer.store.latestRevocationCursor()

  const foreign = await revoke(tokenB, a)
  t.equal(foreign.statusCode, 200, "another client's token: 200, and nothing happens")
  t.equal(foreign.body, '')
  t.equal(await f.app.issuer.store.latestRevocationCursor(), cursor)
  t.equal((await revoke('garbage', a)).statusCode, 200, 'an invalid token: 200')

  const own = await revoke(tokenA, a)
  t.equal(own.statusCode, 200)
  t.equal(own.headers['cache-control'], 'no-store')
  const events = await f.app.issuer.store.listRevocations(cursor, 10)
  t.match(events, [{ type: 'token', tokenId: claimsOf(tokenA).jti }], 'one token event in the feed')
  const introspect = (tok: string) =>
    postForm(f.app, '/oauth/introspect', { token: tok }, basic(GATEWAY, GATEWAY_SECRET))
  t.same((await introspect(tokenA)).json(), { active: false }, 'revoked')
  t.equal((await introspect(tokenB)).json().active, true, 'the other client keeps its token')
  t.equal(
    (await f.app.inject({ url: '/admin/keys', headers: bearer(tokenA) })).statusCode,
    401,
    "the issuer's own Bearer routes refuse it too",
  )
})

t.test('an exchanged token dies with the session (logout) and with logout-all', async (t) => {
  const f = await oauthFixture(t, { OAUTH_INTROSPECTION_CLIENTS: GATEWAY })
  await storeClient(f.app, GATEWAY, GATEWAY_SECRET)
  const svc = await registerClient(f, {
    name: 'orders',
    grant_types: [EXCHANGE],
    scopes: ['profile'],
    audiences: ['keygate-profile'],
  })
  await register(f.app, 'carol@example.com')
  const introspect = (tok: string) =>
    postForm(f.app, '/oauth/introspect', { token: tok }, basic(GATEWAY, GATEWAY_SECRET))
  const exchanged = async (subject: string) => {
    const res = await postForm(
      f.app,
      '/oauth/token',
      { grant_type: EXCHANGE, subject_token: subject, subject_token_type: ACCESS_TOKEN_TYPE },
      basic(svc.client_id, svc.client_secret!),
    )
    if (res.statusCode !== 200) throw new Error(res.body)
    return res.json().access_token as string
  }

  const first = await login(f.app, 'carol@example.com')
  const one = await exchanged(first.accessToken)
  t.equal((await introspect(one)).json().active, true)
  await f.app.inject({
    method: 'POST',
    url: '/auth/logout',
    headers: { 'x-csrf-token': first.csrfToken },
    cookies: { kg_refresh: first.refreshToken },
  })
  t.same((await introspect(one)).json(), { active: false }, 'logout revoked the exchanged token')

  const second = await login(f.app, 'carol@example.com')
  const two = await exchanged(second.accessToken)
  f.clock.advance(5)
  const all = await f.app.inject({
    method: 'POST',
    url: '/auth/logout-all',
    headers: { ...bearer(second.accessToken), 'x-csrf-token': second.csrfToken },
    cookies: { kg_refresh: second.refreshToken },
  })
  t.ok(all.statusCode < 300, `logout-all: ${all.statusCode} ${all.body}`)
  t.same((await introspect(two)).json(), { active: false }, 'logout-all revoked the exchanged token')
})

t.test('disabling a client revokes its tokens and refuses its authentication', async (t) => {
  const f = await oauthFixture(t, { OAUTH_INTROSPECTION_CLIENTS: GATEWAY })
  await storeClient(f.app, GATEWAY, GATEWAY_SECRET)
  const c = await registerClient(f, { name: 'c', scopes: ['s'], audiences: ['keygate-api'] })
  const token = (
    await postForm(
      f.app,
      '/oauth/token',
      { grant_type: 'client_credentials' },
      basic(c.client_id, c.client_secret!),
    )
  ).json().access_token
  f.clock.advance(5)
  const disabled = await f.app.inject({
    method: 'POST',
    url: `/admin/clients/${c.client_id}/disable`,
    headers: bearer(f.adminToken),
  })
  t.equal(disabled.statusCode, 200, disabled.body)
  t.type(disabled.json().disabled_at, 'string')
  const introspect = await postForm(f.app, '/oauth/introspect', { token }, basic(GATEWAY, GATEWAY_SECRET))
  t.same(introspect.json(), { active: false })
  const again = await postForm(
    f.app,
    '/oauth/token',
    { grant_type: 'client_credentials' },
    basic(c.client_id, c.client_secret!),
  )
  t.equal(again.statusCode, 401)
})
