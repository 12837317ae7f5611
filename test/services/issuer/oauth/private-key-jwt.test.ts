import { randomUUID } from 'node:crypto'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import t from 'tap'
import { CLIENT_ASSERTION_TYPE } from '../../../../services/issuer/oauth/client-authentication.js'
import { oauthFixture, postForm, registerClient } from './helpers.js'

const ISSUER = 'http://issuer.test'

t.test('private_key_jwt: single use, asymmetric only, addressed to this issuer', async (t) => {
  const f = await oauthFixture(t)
  const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true })
  const c = await registerClient(f, {
    name: 'keys',
    scopes: ['s'],
    audiences: ['keygate-api'],
    jwks: { keys: [{ ...(await exportJWK(publicKey)), kid: 'k', alg: 'RS256' }] },
  })
  const nowS = () => Math.floor(f.clock.now() / 1000)
  const assertion = (claims: Record<string, unknown> = {}) =>
    new SignJWT({
      iss: c.client_id,
      sub: c.client_id,
      aud: ISSUER,
      iat: nowS(),
      exp: nowS() + 60,
      jti: randomUUID(),
      ...claims,
    })
      .setProtectedHeader({ alg: 'RS256', kid: 'k' })
      .sign(privateKey)
  const token = (clientAssertion: string) =>
    postForm(f.app, '/oauth/token', {
      grant_type: 'client_credentials',
      client_assertion_type: CLIENT_ASSERTION_TYPE,
      client_assertion: clientAssertion,
    })

  const good = await assertion()
  t.equal((await token(good)).statusCode, 200, 'a fresh assertion')
  const replay = await token(good)
  t.equal(replay.statusCode, 401, 'the same assertion again')
  t.equal(replay.json().error, 'invalid_client')
  t.equal(
    (await token(await assertion({ aud: `${ISSUER}/oauth/token` }))).statusCode,
    200,
    'aud = token endpoint',
  )
  t.equal(
    (await token(await assertion({ aud: 'https://elsewhere.example' }))).statusCode,
    401,
    'a foreign aud',
  )
  t.equal((await token(await assertion({ exp: nowS() + 3600 }))).statusCode, 401, 'too long-lived')
  t.equal((await token(await assertion({ exp: nowS() - 120 }))).statusCode, 401, 'expired')
  const noJti = await new SignJWT({})
    .setProtectedHeader({ alg: 'RS256', kid: 'k' })
    .setIssuer(c.client_id)
    .setSubject(c.client_id)
    .setAudience(ISSUER)
    .setExpirationTime(nowS() + 60)
    .sign(privateKey)
  t.equal((await token(noJti)).statusCode, 401, 'no jti')

  // Signed with the client id as an HMAC secret, or not at all: refused before any key is looked at.
  const hs = await new SignJWT({ jti: randomUUID() })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(c.client_id)
    .setSubject(c.client_id)
    .setAudience(ISSUER)
    .setExpirationTime(nowS() + 60)
    .sign(new TextEncoder().encode(c.client_id))
  t.equal((await token(hs)).json().error, 'invalid_client', 'HS256')
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url')
  const none = `${b64({ alg: 'none' })}.${b64({ iss: c.client_id, sub: c.client_id, aud: ISSUER, jti: 'x', exp: nowS() + 60 })}.`
  t.equal((await token(none)).json().error, 'invalid_client', 'alg none')
  t.equal((await token('not-a-jwt')).json().error, 'invalid_client', 'garbage')

  const wrongType = await postForm(f.app, '/oauth/token', {
    grant_type: 'client_credentials',
    client_assertion_type: 'urn:example:other',
    client_assertion: await assertion(),
  })
  t.equal(wrongType.statusCode, 400)
  t.equal(wrongType.json().error, 'invalid_request')
  const mismatch = await postForm(f.app, '/oauth/token', {
    grant_type: 'client_credentials',
    client_id: 'kgc_someone_else',
    client_assertion_type: CLIENT_ASSERTION_TYPE,
    client_assertion: await assertion(),
  })
  t.equal(mismatch.json().error, 'invalid_client', 'client_id differs from the assertion')
})

t.test('registration refuses private or symmetric keys', async (t) => {
  const f = await oauthFixture(t)
  const { privateKey } = await generateKeyPair('ES256', { extractable: true })
  for (const [name, jwk] of [
    ['a private key', await exportJWK(privateKey)],
    ['a symmetric key', { kty: 'oct', k: 'c2VjcmV0' }],
    ['an unusable key', { kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA' }],
  ] as const) {
    const res = await f.app.inject({
      method: 'POST',
      url: '/admin/clients',
      headers: { authorization: `Bearer ${f.adminToken}` },
      payload: { name: 'k', grant_types: ['client_credentials'], audiences: ['a'], jwks: { keys: [jwk] } },
    })
    t.equal(res.statusCode, 400, name)
  }
})
