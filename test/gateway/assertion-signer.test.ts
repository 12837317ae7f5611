import { chmodSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { calculateJwkThumbprint, createLocalJWKSet, decodeJwt, jwtVerify } from 'jose'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { ASSERTION_RENEW_BEFORE_S, AssertionSigner } from '../../gateway/assertion-signer.js'
import type { Identity } from '../../lib/auth/types.js'
import { startEchoGateway } from './helpers/servers.js'

const ISSUER = 'http://gateway.test'
const T0 = 1_800_000_000_000

function identity(overrides: Partial<Identity> = {}): Identity {
  return {
    subject: 'user-1',
    principal: 'user-1',
    issuer: 'http://issuer.test',
    clientId: 'keygate-web',
    sessionId: 'session-1',
    roles: ['user', 'editor'],
    scopes: ['profile', 'orders'],
    tokenId: 'token-1',
    issuedAt: T0 / 1000 - 60,
    expiresAt: T0 / 1000 + 900,
    keyId: 'issuer-kid',
    claims: {},
    source: 'token',
    token: 'a.b.c',
    ...overrides,
  }
}

const keyFile = (t: Test) => join(t.testdir(), 'keys', 'gateway-assertion-key.json')

t.test('the key is made on first start, private, and shared by every process using the file', async (t) => {
  const file = keyFile(t)
  const [a, b] = await Promise.all([
    AssertionSigner.open({ keyFile: file, issuer: ISSUER }),
    AssertionSigner.open({ keyFile: file, issuer: ISSUER }),
  ])
  t.equal(a.kid, b.kid, 'two gateways starting at once agree on one key')
  t.equal(statSync(file).mode & 0o777, 0o600)
  const again = await AssertionSigner.open({ keyFile: file, issuer: ISSUER })
  t.equal(again.kid, a.kid, 'a restart keeps the key')
  const [jwk] = a.jwks.keys
  t.equal(
    a.kid,
    await calculateJwkThumbprint({ kty: 'OKP', crv: 'Ed25519', x: jwk!.x }),
    'kid is the RFC 7638 thumbprint',
  )
  t.same(Object.keys(jwk!).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x'], 'nothing private is published')

  chmodSync(file, 0o644)
  await t.rejects(
    AssertionSigner.open({ keyFile: file, issuer: ISSUER }),
    /GATEWAY_ASSERTION_KEY_FILE .*chmod 600/,
  )
  writeFileSync(file, '{"kty":"RSA"}', { mode: 0o600 })
  chmodSync(file, 0o600)
  await t.rejects(AssertionSigner.open({ keyFile: file, issuer: ISSUER }), /not an Ed25519 private JWK/)
})

t.test('an assertion is an EdDSA JWS with exactly the documented claims', async (t) => {
  const now = T0
  const signer = await AssertionSigner.open({ keyFile: keyFile(t), issuer: ISSUER, now: () => now })
  const jws = signer.assertionFor(identity(), 'profile')
  const { payload, protectedHeader } = await jwtVerify(jws, createLocalJWKSet(signer.jwks), {
    issuer: ISSUER,
    audience: 'profile',
    typ: 'kg-assertion+jwt',
    algorithms: ['EdDSA'],
    currentDate: new Date(now),
  })
  t.same(protectedHeader, { alg: 'EdDSA', typ: 'kg-assertion+jwt', kid: signer.kid })
  t.same(Object.keys(payload).sort(), [
    'at_iat',
    'at_iss',
    'at_jti',
    'at_kid',
    'aud',
    'client_id',
    'exp',
    'iat',
    'iss',
    'jti',
    'roles',
    'scope',
    'sid',
    'sub',
  ])
  t.match(payload, {
    iss: ISSUER,
    aud: 'profile',
    sub: 'user-1',
    iat: T0 / 1000,
    exp: T0 / 1000 + 60,
    roles: ['user', 'editor'],
    scope: 'profile orders',
    sid: 'session-1',
    client_id: 'keygate-web',
    at_jti: 'token-1',
    at_iat: T0 / 1000 - 60,
    at_iss: 'http://issuer.test',
    at_kid: 'issuer-kid',
  })
  const anonymousClient = decodeJwt(
    signer.assertionFor(identity({ tokenId: 't2', sessionId: undefined, clientId: undefined }), 'x'),
  )
  t.notOk('sid' in anonymousClient || 'client_id' in anonymousClient, 'absent claims are left out')
})

t.test(
  'assertions are reused per verified token and audience until shortly before they expire',
  async (t) => {
    let now = T0
    const signer = await AssertionSigner.open({
      keyFile: keyFile(t),
      issuer: ISSUER,
      ttlS: 60,
      now: () => now,
    })
    // The verifier hands the gateway the same identity for the same token while it caches it.
    const caller = identity()
    const first = signer.assertionFor(caller, 'profile')
    t.equal(signer.assertionFor(caller, 'profile'), first, 'same token, same audience: the same assertion')
    const toOrders = signer.assertionFor(caller, 'orders')
    t.not(toOrders, first, 'another audience: another assertion')
    t.equal(decodeJwt(toOrders).aud, 'orders')
    t.equal(signer.assertionFor(caller, 'orders'), toOrders, 'each audience keeps its own')
    t.equal(signer.assertionFor(caller, 'profile'), first)
    t.not(
      signer.assertionFor(identity({ tokenId: 'token-2' }), 'profile'),
      first,
      'another token: another one',
    )
    t.not(
      signer.assertionFor(identity(), 'profile'),
      first,
      'a token verified again (a new identity): a new one',
    )

    now = T0 + (60 - ASSERTION_RENEW_BEFORE_S - 1) * 1000
    t.equal(signer.assertionFor(caller, 'profile'), first, 'still reused with time to live')
    now = T0 + (60 - ASSERTION_RENEW_BEFORE_S) * 1000
    const renewed = signer.assertionFor(caller, 'profile')
    t.not(renewed, first, 'a new one near expiry')
    t.equal(decodeJwt(renewed).exp, now / 1000 + 60)
    t.equal(signer.assertionFor(caller, 'profile'), renewed, 'the renewed one replaces the old')

    const expiring = identity({ tokenId: 'token-3', expiresAt: T0 / 1000 + 30 })
    now = T0
    const capped = signer.assertionFor(expiring, 'profile')
    t.equal(decodeJwt(capped).exp, T0 / 1000 + 30, 'never outlives the token')
    now = T0 + 25_000
    t.equal(signer.assertionFor(expiring, 'profile'), capped, 'capped by the token: kept to its end')
  },
)

t.test('the gateway publishes its key over HTTP, cacheable, ahead of the proxied /.well-known', async (t) => {
  const { upstream, gw } = await startEchoGateway(t, {
    routes: [{ prefix: '/.well-known', upstream: 'issuer', auth: { mode: 'none' } }],
  })
  const res = await request(`${gw.url}/.well-known/gateway-jwks.json`)
  t.equal(res.statusCode, 200)
  t.equal(res.headers['cache-control'], 'public, max-age=300')
  const jwks = (await res.body.json()) as { keys: Array<{ kty: string; crv: string; alg: string }> }
  t.match(jwks.keys, [{ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA' }])
  t.equal(upstream.requests, 0)
  const proxied = await request(`${gw.url}/.well-known/jwks.json`)
  await proxied.body.dump()
  t.equal(upstream.requests, 1, 'the rest of /.well-known is the issuer’s')
})

t.test('through the gateway, one token gets one assertion per upstream across requests', async (t) => {
  const { issuer, gw } = await startEchoGateway(t, {
    routes: [
      { prefix: '/a', upstream: 'a', auth: { mode: 'required' } },
      { prefix: '/b', upstream: 'b', auth: { mode: 'required' } },
    ],
  })
  const assertionAt = async (path: string, token: string) => {
    const res = await request(`${gw.url}${path}`, { headers: { authorization: `Bearer ${token}` } })
    return ((await res.body.json()) as { headers: Record<string, string> }).headers['x-keygate-assertion']!
  }
  const token = await issuer.mint()
  const first = await assertionAt('/a/1', token)
  t.equal(await assertionAt('/a/2', token), first)
  const forB = await assertionAt('/b/1', token)
  t.not(forB, first)
  t.equal(decodeJwt(forB).aud, 'b')
  t.not(await assertionAt('/a/1', await issuer.mint()), first, 'another token, another assertion')
})
