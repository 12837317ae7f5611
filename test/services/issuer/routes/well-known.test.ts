import type { AddressInfo } from 'node:net'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import t from 'tap'
import { issuerFixture, login, register } from '../fixtures.js'

t.test('a token verifies with jose against the JWKS served over HTTP', async (t) => {
  const { app, clock } = await issuerFixture(t)
  await register(app, 'verify@example.com')
  const { accessToken } = await login(app, 'verify@example.com')
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  const jwks = createRemoteJWKSet(new URL(`http://127.0.0.1:${port}/.well-known/jwks.json`))
  const { payload, protectedHeader } = await jwtVerify(accessToken, jwks, {
    issuer: 'http://issuer.test',
    audience: 'keygate-api',
    typ: 'at+jwt',
    algorithms: ['RS256'],
    currentDate: new Date(clock.now()),
  })
  t.equal(protectedHeader.kid, app.issuer.keys.signingKey().kid)
  t.equal(payload.client_id, 'keygate-web')
})

t.test('JWKS: next, active and retired public keys, cacheable for JWKS_MAX_AGE', async (t) => {
  const { app, clock } = await issuerFixture(t, { env: { JWKS_MAX_AGE: '2m', KEY_PUBLISH_LEAD: '10m' } })
  const res = await app.inject('/.well-known/jwks.json')
  t.equal(res.statusCode, 200)
  t.equal(res.headers['cache-control'], 'public, max-age=120')
  t.match(res.headers['content-type'], /^application\/json/)
  const { keys } = res.json()
  t.equal(keys.length, 2)
  t.notOk(JSON.stringify(keys).includes('"d"'), 'no private part')
  clock.advance(10 * 60_000)
  const admin = app.issuer.keys
  await admin.rotate()
  t.equal(
    (await app.inject('/.well-known/jwks.json')).json().keys.length,
    3,
    'the retired key stays published',
  )
})

t.test('discovery and RFC 8414 metadata name what exists, and mean what the RFCs say', async (t) => {
  const open = await issuerFixture(t)
  const doc = (await open.app.inject('/.well-known/openid-configuration')).json()
  // The OAuth endpoints are the oauth routes' (routes/oauth.ts); the keygate_* ones the browser's.
  const clientAuth = ['client_secret_basic', 'client_secret_post', 'private_key_jwt']
  const assertionAlgs = [
    'RS256',
    'RS384',
    'RS512',
    'PS256',
    'PS384',
    'PS512',
    'ES256',
    'ES384',
    'ES512',
    'EdDSA',
  ]
  t.same(doc, {
    issuer: 'http://issuer.test',
    jwks_uri: 'http://issuer.test/.well-known/jwks.json',
    token_endpoint: 'http://issuer.test/oauth/token',
    token_endpoint_auth_methods_supported: clientAuth,
    token_endpoint_auth_signing_alg_values_supported: assertionAlgs,
    grant_types_supported: ['client_credentials', 'urn:ietf:params:oauth:grant-type:token-exchange'],
    revocation_endpoint: 'http://issuer.test/oauth/revoke',
    revocation_endpoint_auth_methods_supported: clientAuth,
    revocation_endpoint_auth_signing_alg_values_supported: assertionAlgs,
    introspection_endpoint: 'http://issuer.test/oauth/introspect',
    introspection_endpoint_auth_methods_supported: clientAuth,
    introspection_endpoint_auth_signing_alg_values_supported: assertionAlgs,
    access_token_signing_alg_values_supported: ['RS256'],
    keygate_login_endpoint: 'http://issuer.test/auth/login',
    keygate_login_methods_endpoint: 'http://issuer.test/auth/methods',
    keygate_login_methods_supported: ['password'],
    keygate_refresh_endpoint: 'http://issuer.test/auth/refresh',
    keygate_logout_endpoint: 'http://issuer.test/auth/logout',
    keygate_logout_all_endpoint: 'http://issuer.test/auth/logout-all',
    keygate_password_endpoint: 'http://issuer.test/auth/password',
    keygate_registration_endpoint: 'http://issuer.test/auth/register',
  })
  t.notOk(doc.token_endpoint_auth_signing_alg_values_supported.some((a: string) => /^(none|HS)/.test(a)))
  t.notOk('registration_endpoint' in doc, 'user sign-up is not RFC 7591 client registration')
  t.notOk('response_types_supported' in doc, 'not an OpenID provider: no ID tokens')
  t.notOk('authorization_endpoint' in doc)
  const rfc8414 = await open.app.inject('/.well-known/oauth-authorization-server')
  t.equal(rfc8414.statusCode, 200)
  t.same(rfc8414.json(), doc, 'the same document at the RFC 8414 address')
  const closed = await issuerFixture(t, { env: { REGISTRATION: 'closed' } })
  const closedDoc = (await closed.app.inject('/.well-known/openid-configuration')).json()
  t.notOk(
    'keygate_registration_endpoint' in closedDoc,
    'no registration endpoint when registration is closed',
  )
})
