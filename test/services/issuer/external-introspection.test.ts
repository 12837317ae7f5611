/**
 * External logins ask the provider (a process of its own, with its own keys, JWKS and RFC 7662 endpoint)
 * whether the token is still active: a token revoked there logs nothing in and links nothing; a provider
 * that cannot answer gets a 503 and no session. Also the `jwt` profile for OpenID Connect ID tokens.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import {
  EXTERNAL_IDP_AUDIENCE,
  EXTERNAL_IDP_WEB_CLIENT,
  type ExternalIdp,
  startExternalIdp,
} from '../../helpers/external-idp.js'
import { bearer, claimsOf, issuerFixture, login, register, tempDir } from './fixtures.js'

type App = Awaited<ReturnType<typeof issuerFixture>>['app']

const idp = await startExternalIdp()
t.teardown(() => idp.stop())

function env(entry: Record<string, unknown>, extra: Record<string, string> = {}) {
  return {
    LOGIN_METHODS: 'password,external',
    EXTERNAL_ISSUERS: JSON.stringify([
      {
        issuer: idp.url,
        jwks_uri: idp.jwksUri,
        audience: EXTERNAL_IDP_AUDIENCE,
        trusted_for_email: true,
        ...entry,
      },
    ]),
    ...extra,
  }
}

/** The provider's introspection endpoint as EXTERNAL_ISSUERS names it, the secret in a file. */
function introspection(t: Test, provider: ExternalIdp, secret?: string) {
  const file = join(tempDir(t), 'idp-secret')
  writeFileSync(file, `${secret ?? provider.introspectionClient.secret}\n`)
  return {
    introspection: {
      endpoint: provider.introspectionEndpoint,
      client_id: provider.introspectionClient.id,
      client_secret_file: file,
    },
  }
}

const externalLogin = (app: App, token: string) =>
  app.inject({ method: 'POST', url: '/auth/external', payload: { token } })

t.test('a token the provider revoked logs nothing in and links nothing', async (t) => {
  await idp.introspectionMode('normal')
  const { app } = await issuerFixture(t, { env: env(introspection(t, idp)) })
  const ada = await register(app, 'ada@example.com')

  const token = await idp.token('idp|ada', 'ada@example.com')
  const first = await externalLogin(app, token)
  t.equal(first.statusCode, 200, 'active at the provider: logged in')
  t.equal(claimsOf(first.json().access_token).sub, ada)

  await idp.revoke(token)
  const again = await externalLogin(app, token)
  t.equal(again.statusCode, 401, 'revoked at the provider')
  t.equal(again.json().code, 'KG_EXTERNAL_TOKEN_INACTIVE')
  t.notOk(again.headers['set-cookie'], 'no session cookie')
  t.equal((await app.issuer.store.listSessions(ada)).length, 1, 'only the first login has a session')
  t.equal(
    (await externalLogin(app, await idp.token('idp|ada', 'ada@example.com'))).statusCode,
    200,
    'a new token works',
  )

  // First sight of a revoked token: no account, no link.
  const bob = await idp.token('idp|bob', 'bob@example.com')
  await idp.revoke(bob)
  t.equal((await externalLogin(app, bob)).json().code, 'KG_EXTERNAL_TOKEN_INACTIVE')
  t.equal(await app.issuer.store.findUserByEmail('bob@example.com'), undefined, 'no account')
  t.equal(await app.issuer.store.identities.find(idp.url, 'idp|bob'), undefined, 'no link')

  // Nor may a logged-in user link an identity with a revoked token.
  const carolId = await register(app, 'carol@example.com')
  const carol = await login(app, 'carol@example.com')
  const carolToken = await idp.token('idp|carol', 'carol-elsewhere@example.com')
  await idp.revoke(carolToken)
  const link = await app.inject({
    method: 'POST',
    url: '/auth/identities',
    headers: bearer(carol.accessToken),
    payload: { token: carolToken },
  })
  t.equal(link.statusCode, 401)
  t.equal(link.json().code, 'KG_EXTERNAL_TOKEN_INACTIVE')
  t.same(await app.issuer.store.identities.listForUser(carolId), [])

  // A token that fails locally never reaches the provider.
  const before = await idp.introspections()
  const forged = `${token.slice(0, token.lastIndexOf('.'))}.${'A'.repeat(342)}`
  t.equal((await externalLogin(app, forged)).statusCode, 401)
  t.equal(await idp.introspections(), before, 'no introspection for a token that does not verify')

  const metrics = (await app.operations.inject('/metrics')).body
  t.match(metrics, /keygate_issuer_external_logins_total\{outcome="inactive",component="issuer"\} 3/)
})

t.test('a provider that cannot answer: 503 with Retry-After, no session, nothing stored', async (t) => {
  const { app, logs } = await issuerFixture(t, { env: env(introspection(t, idp)) })
  const tokens: string[] = []
  for (const mode of ['error', 'garbage', 'hang'] as const) {
    await idp.introspectionMode(mode)
    const token = await idp.token(`idp|${mode}`, `${mode}@example.com`)
    tokens.push(token)
    const res = await externalLogin(app, token)
    t.equal(res.statusCode, 503, mode)
    t.equal(res.json().code, 'KG_EXTERNAL_ISSUER_UNAVAILABLE', mode)
    t.ok(Number(res.headers['retry-after']) > 0, `${mode}: Retry-After`)
    t.notOk(res.headers['set-cookie'], `${mode}: no session cookie`)
    t.equal(await app.issuer.store.findUserByEmail(`${mode}@example.com`), undefined, `${mode}: no account`)
  }
  await idp.introspectionMode('normal')
  t.equal((await externalLogin(app, await idp.token('idp|back', 'back@example.com'))).statusCode, 200, 'back')
  t.equal(logs.find('external token introspection failed').length, 3, 'each failure logged')
  for (const secret of [idp.introspectionClient.secret, ...tokens.map((token) => token.split('.')[2]!)]) {
    t.equal(logs.find(secret).length, 0, 'no client secret and no token in the log')
  }
})

t.test('keygate refused by the provider (wrong client secret): 503, not a login', async (t) => {
  await idp.introspectionMode('normal')
  const { app } = await issuerFixture(t, { env: env(introspection(t, idp, 'not the secret')) })
  const res = await externalLogin(app, await idp.token('idp|dan', 'dan@example.com'))
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'KG_EXTERNAL_ISSUER_UNAVAILABLE')
})

t.test('a provider that is down: 503 while its cached keys still verify the token', async (t) => {
  const provider = await startExternalIdp()
  t.teardown(() => provider.stop())
  const { app } = await issuerFixture(t, {
    env: {
      LOGIN_METHODS: 'external',
      EXTERNAL_ISSUERS: JSON.stringify([
        {
          issuer: provider.url,
          jwks_uri: provider.jwksUri,
          audience: EXTERNAL_IDP_AUDIENCE,
          trusted_for_email: true,
          introspection: {
            endpoint: provider.introspectionEndpoint,
            client_id: provider.introspectionClient.id,
            client_secret: provider.introspectionClient.secret,
          },
        },
      ]),
    },
  })
  const token = await provider.token('idp|erin', 'erin@example.com')
  t.equal((await externalLogin(app, token)).statusCode, 200, 'keys fetched, token active')
  await provider.stop()
  const res = await externalLogin(app, token)
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'KG_EXTERNAL_ISSUER_UNAVAILABLE')
  t.ok(res.headers['retry-after'])
})

t.test('without an introspection endpoint the provider is not asked', async (t) => {
  await idp.introspectionMode('error')
  t.teardown(() => idp.introspectionMode('normal'))
  const { app } = await issuerFixture(t, { env: env({}) })
  const before = await idp.introspections()
  t.equal((await externalLogin(app, await idp.token('idp|fay', 'fay@example.com'))).statusCode, 200)
  t.equal(await idp.introspections(), before)
})

t.test('OpenID Connect ID tokens log in with profile jwt and their client id as audience', async (t) => {
  await idp.introspectionMode('normal')
  const idTokenEnv = (entry: Record<string, unknown>) => env({ audience: EXTERNAL_IDP_WEB_CLIENT, ...entry })
  const strict = await issuerFixture(t, { env: idTokenEnv({}) })
  const idToken = await idp.token('idp|gus', 'gus@example.com', 'id_token')
  const refused = await externalLogin(strict.app, idToken)
  t.equal(refused.statusCode, 401, 'the default profile wants RFC 9068 access tokens')
  t.equal(refused.json().code, 'KG_TOKEN_TYPE_INVALID')

  const { app } = await issuerFixture(t, { env: idTokenEnv({ profile: 'jwt', ...introspection(t, idp) }) })
  const gus = await register(app, 'gus@example.com')
  const res = await externalLogin(app, idToken)
  t.equal(res.statusCode, 200)
  t.equal(claimsOf(res.json().access_token).sub, gus)
  const accessToken = await idp.token('idp|gus', 'gus@example.com')
  t.equal(
    (await externalLogin(app, accessToken)).json().code,
    'KG_TOKEN_TYPE_INVALID',
    'an access token (another type, for another audience) is not',
  )
  await idp.revoke(idToken)
  t.equal((await externalLogin(app, idToken)).json().code, 'KG_EXTERNAL_TOKEN_INACTIVE', 'revoked ID token')
})

t.test('the introspection settings are checked at start', async (t) => {
  const base = { endpoint: idp.introspectionEndpoint, client_id: 'keygate' }
  for (const [introspection, pattern, why] of [
    [base, /client_secret or client_secret_file/, 'no secret'],
    [{ ...base, client_secret: 'a', client_secret_file: '/x' }, /exactly one/, 'both'],
    [{ ...base, client_secret_file: '/nonexistent/secret' }, /client_secret_file: cannot read/, 'unreadable'],
    [
      { ...base, client_secret: 's', endpoint: 'ftp://idp' },
      /EXTERNAL_ISSUERS\/0\/introspection\/endpoint/,
      'scheme',
    ],
  ] as const) {
    await t.rejects(issuerFixture(t, { env: env({ introspection }) }), pattern, why)
  }
  await t.rejects(
    issuerFixture(t, { env: env({ profile: 'oidc' }) }),
    /EXTERNAL_ISSUERS\/0\/profile/,
    'profile',
  )
})
