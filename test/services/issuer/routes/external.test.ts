import t, { type Test } from 'tap'
import { startTokenIssuer, type TokenIssuer } from '../../../helpers/token-issuer.js'
import { bearer, claimsOf, issuerFixture, login, register } from '../fixtures.js'

type App = Awaited<ReturnType<typeof issuerFixture>>['app']

const ADMIN = { KEYGATE_ADMIN_EMAIL: 'admin@example.com', KEYGATE_ADMIN_PASSWORD: 'admin password 1' }

async function provider(t: Test): Promise<TokenIssuer> {
  const idp = await startTokenIssuer({ audience: 'keygate' })
  t.teardown(() => idp.close())
  return idp
}

function externalEnv(trusted: TokenIssuer, untrusted: TokenIssuer, env: Record<string, string> = {}) {
  return {
    LOGIN_METHODS: 'password,email-code,external',
    EXTERNAL_ISSUERS: JSON.stringify([
      { issuer: trusted.url, jwks_uri: trusted.jwksUri, audience: 'keygate', trusted_for_email: true },
      { issuer: untrusted.url, jwks_uri: untrusted.jwksUri, audience: 'keygate' },
    ]),
    ...ADMIN,
    ...env,
  }
}

const externalLogin = (app: App, token: string) =>
  app.inject({ method: 'POST', url: '/auth/external', payload: { token } })

t.test('off unless LOGIN_METHODS has external', async (t) => {
  const idp = await provider(t)
  const { app } = await issuerFixture(t)
  const res = await externalLogin(app, await idp.mint())
  t.equal(res.statusCode, 403)
  t.equal(res.json().code, 'KG_LOGIN_METHOD_DISABLED')
})

t.test('a verified e-mail from a provider trusted for e-mail links to the same account', async (t) => {
  const trusted = await provider(t)
  const untrusted = await provider(t)
  const { app } = await issuerFixture(t, { env: externalEnv(trusted, untrusted) })
  const adaId = await register(app, 'ada@example.com')

  const token = await trusted.mint({ sub: 'idp|ada', email: 'Ada@Example.com', email_verified: true })
  const res = await externalLogin(app, token)
  t.equal(res.statusCode, 200)
  t.ok(
    res.cookies.find((c) => c.name === 'kg_refresh'),
    'the session cookies',
  )
  t.ok(res.json().csrf_token)
  t.equal(claimsOf(res.json().access_token).sub, adaId, 'the keygate account')

  // Linked now: the identity keeps its account whatever e-mail the provider says later.
  const later = await trusted.mint({ sub: 'idp|ada', email: 'other@example.com', email_verified: true })
  t.equal(claimsOf((await externalLogin(app, later)).json().access_token).sub, adaId)

  const admin = await login(app, ADMIN.KEYGATE_ADMIN_EMAIL, ADMIN.KEYGATE_ADMIN_PASSWORD)
  const list = await app.inject({
    method: 'GET',
    url: `/admin/users/${adaId}/identities`,
    headers: bearer(admin.accessToken),
  })
  t.equal(list.statusCode, 200)
  t.match(list.json().identities, [
    { issuer: trusted.url, subject: 'idp|ada', user_id: adaId, email: 'ada@example.com', linked_by: 'email' },
  ])

  const unverified = await trusted.mint({ sub: 'idp|bob', email: 'ada@example.com', email_verified: false })
  const refused = await externalLogin(app, unverified)
  t.equal(refused.statusCode, 403, 'an unverified e-mail links nothing')
  t.equal(refused.json().code, 'KG_EXTERNAL_IDENTITY_UNLINKED')

  const fromUntrusted = await untrusted.mint({ sub: 'u|ada', email: 'ada@example.com', email_verified: true })
  t.equal(
    (await externalLogin(app, fromUntrusted)).json().code,
    'KG_EXTERNAL_IDENTITY_UNLINKED',
    'a provider not trusted for e-mail links nothing by e-mail',
  )
})

t.test('the logged-in user or an admin links; admin lists and removes', async (t) => {
  const trusted = await provider(t)
  const untrusted = await provider(t)
  const { app } = await issuerFixture(t, {
    env: externalEnv(trusted, untrusted, { REGISTRATION: 'closed' }),
  })
  const admin = await login(app, ADMIN.KEYGATE_ADMIN_EMAIL, ADMIN.KEYGATE_ADMIN_PASSWORD)
  const created = await app.inject({
    method: 'POST',
    url: '/admin/users',
    headers: bearer(admin.accessToken),
    payload: { email: 'bob@example.com', password: 'bob password 1' },
  })
  const bobId = created.json().id as string
  const bob = await login(app, 'bob@example.com', 'bob password 1')
  const token = await untrusted.mint({ sub: 'u|bob' })

  const link = await app.inject({
    method: 'POST',
    url: '/auth/identities',
    headers: bearer(bob.accessToken),
    payload: { token },
  })
  t.equal(link.statusCode, 201)
  t.match(link.json(), { issuer: untrusted.url, subject: 'u|bob', user_id: bobId, linked_by: 'user' })
  t.equal(claimsOf((await externalLogin(app, token)).json().access_token).sub, bobId)
  const own = await app.inject({ method: 'GET', url: '/auth/identities', headers: bearer(bob.accessToken) })
  t.equal(own.json().identities.length, 1)

  const adminSelf = await app.inject({
    method: 'POST',
    url: '/auth/identities',
    headers: bearer(admin.accessToken),
    payload: { token },
  })
  t.equal(adminSelf.statusCode, 409, 'one identity, one account')
  t.equal(adminSelf.json().code, 'KG_IDENTITY_LINKED_ELSEWHERE')

  const byAdmin = await app.inject({
    method: 'POST',
    url: `/admin/users/${bobId}/identities`,
    headers: bearer(admin.accessToken),
    payload: { issuer: trusted.url, subject: 'idp|bob' },
  })
  t.equal(byAdmin.statusCode, 201)
  t.equal(byAdmin.json().linked_by, 'admin')
  t.equal(
    claimsOf((await externalLogin(app, await trusted.mint({ sub: 'idp|bob' }))).json().access_token).sub,
    bobId,
  )
  const unknownIssuer = await app.inject({
    method: 'POST',
    url: `/admin/users/${bobId}/identities`,
    headers: bearer(admin.accessToken),
    payload: { issuer: 'https://elsewhere.example', subject: 'x' },
  })
  t.equal(unknownIssuer.statusCode, 400)
  const notAdmin = await app.inject({
    method: 'GET',
    url: `/admin/users/${bobId}/identities`,
    headers: bearer(bob.accessToken),
  })
  t.equal(notAdmin.statusCode, 403)

  const remove = (subject: string, issuer = untrusted.url) =>
    app.inject({
      method: 'DELETE',
      url: `/admin/users/${bobId}/identities`,
      query: { issuer, subject },
      headers: bearer(admin.accessToken),
    })
  t.equal((await remove('u|bob')).statusCode, 204)
  const gone = await remove('u|bob')
  t.equal(gone.statusCode, 404)
  t.equal(gone.json().code, 'KG_IDENTITY_NOT_FOUND')
  t.equal((await externalLogin(app, token)).json().code, 'KG_EXTERNAL_IDENTITY_UNLINKED', 'unlinked')
  const list = await app.inject({
    method: 'GET',
    url: `/admin/users/${bobId}/identities`,
    headers: bearer(admin.accessToken),
  })
  t.same(
    list.json().identities.map((i: { subject: string }) => i.subject),
    ['idp|bob'],
  )

  const stranger = await trusted.mint({ sub: 'idp|carol', email: 'carol@example.com', email_verified: true })
  t.equal(
    (await externalLogin(app, stranger)).json().code,
    'KG_EXTERNAL_IDENTITY_UNLINKED',
    'registration closed: no account is created',
  )
  t.equal(await app.issuer.store.findUserByEmail('carol@example.com'), undefined)
})

t.test('registration open: a verified e-mail without an account gets one', async (t) => {
  const trusted = await provider(t)
  const untrusted = await provider(t)
  const { app } = await issuerFixture(t, { env: externalEnv(trusted, untrusted) })
  const res = await externalLogin(
    app,
    await trusted.mint({ sub: 'idp|dan', email: 'dan@example.com', email_verified: true }),
  )
  t.equal(res.statusCode, 200)
  const dan = await app.issuer.store.findUserByEmail('dan@example.com')
  t.equal(claimsOf(res.json().access_token).sub, dan?.id)
})

t.test('tokens that must not log in: 4xx, nothing stored', async (t) => {
  const trusted = await provider(t)
  const untrusted = await provider(t)
  const stranger = await provider(t)
  const { app } = await issuerFixture(t, { env: externalEnv(trusted, untrusted) })
  const claims = { sub: 'idp|eve', email: 'eve@example.com', email_verified: true }
  const now = Math.floor(Date.now() / 1000)
  const strangerJwks = stranger.jwksRequests
  const cases: [string, string, string][] = [
    [await stranger.mint(claims), 'KG_TOKEN_ISSUER_UNKNOWN', 'an issuer not configured'],
    [await trusted.mint({ ...claims, aud: 'someone-else' }), 'KG_TOKEN_AUDIENCE_INVALID', 'another audience'],
    [await trusted.mint({ ...claims, iat: now - 3600, exp: now - 1800 }), 'KG_TOKEN_EXPIRED', 'expired'],
    [
      await trusted.mint(claims, {}, stranger.keys[0]),
      'KG_TOKEN_KEY_UNKNOWN',
      'signed by a key not published',
    ],
    [
      await trusted.mint(claims, { jku: stranger.jwksUri }, stranger.keys[0]),
      'KG_TOKEN_MALFORMED',
      'naming where its key is (jku)',
    ],
    [await trusted.mint(claims, { alg: 'HS256' }).catch(() => 'x.y.z'), 'KG_TOKEN_MALFORMED', 'garbage'],
    ['not-a-jwt', 'KG_TOKEN_MALFORMED', 'not a JWT'],
  ]
  for (const [token, code, why] of cases) {
    const res = await externalLogin(app, token)
    t.equal(res.statusCode, 401, why)
    t.equal(res.json().code, code, why)
  }
  t.equal(stranger.jwksRequests, strangerJwks, 'no key is fetched from a URL a token names')
  const empty = await app.inject({ method: 'POST', url: '/auth/external', payload: { token: '' } })
  t.equal(empty.statusCode, 400)
  t.equal(await app.issuer.store.findUserByEmail('eve@example.com'), undefined, 'no account')
  t.same(await app.issuer.store.identities.listForUser('anyone'), [])
})

t.test('EXTERNAL_ISSUERS is checked at start', async (t) => {
  const idp = await provider(t)
  const entry = { issuer: idp.url, jwks_uri: idp.jwksUri, audience: 'keygate' }
  for (const [env, why] of [
    [{ LOGIN_METHODS: 'external' }, 'external without issuers'],
    [{ LOGIN_METHODS: 'external', EXTERNAL_ISSUERS: '{' }, 'not JSON'],
    [{ LOGIN_METHODS: 'external', EXTERNAL_ISSUERS: JSON.stringify([{ issuer: idp.url }]) }, 'no jwks_uri'],
    [
      { LOGIN_METHODS: 'external', EXTERNAL_ISSUERS: JSON.stringify([{ ...entry, algorithms: ['none'] }]) },
      'algorithm',
    ],
    [
      {
        LOGIN_METHODS: 'external',
        EXTERNAL_ISSUERS: JSON.stringify([{ ...entry, issuer: 'http://issuer.test' }]),
      },
      'its own issuer',
    ],
  ] as const) {
    await t.rejects(issuerFixture(t, { env }), /EXTERNAL_ISSUERS/, why)
  }
})
