import { generateKeyPairSync, KeyObject, randomUUID } from 'node:crypto'
import { exportJWK, exportSPKI } from 'jose'
import t from 'tap'
import { importVerificationKey } from '../../../lib/auth/jwk.js'
import { RevocationSet } from '../../../lib/auth/revocation-set.js'
import type { KeySource, VerificationKey } from '../../../lib/auth/types.js'
import { type IssuerPolicy, TokenVerifier } from '../../../lib/auth/verifier.js'
import { KeygateError } from '../../../lib/errors.js'
import { signHmac, signRsa, signWith, unsigned } from '../../helpers/jws.js'
import { makeKey, type TestKey } from '../../helpers/token-issuer.js'

const ISS = 'https://issuer.test'
const AUD = 'keygate-api'

/** Keys held in memory; the test removes keys or makes the source stale by hand. */
class StaticKeySource implements KeySource {
  readonly keys = new Map<string, VerificationKey>()
  lookups = 0
  stale = false
  #listeners: Array<(kids: string[]) => void> = []
  add(key: VerificationKey) {
    this.keys.set(key.kid, key)
  }
  remove(kid: string) {
    this.keys.delete(kid)
    for (const l of this.#listeners) l([kid])
  }
  getKey(kid: string) {
    this.lookups++
    return this.keys.get(kid)
  }
  ready = async () => {}
  usable = () => !this.stale
  onKeysRemoved(listener: (kids: string[]) => void) {
    this.#listeners.push(listener)
  }
  close = async () => {}
}

function clock(start = Date.now()) {
  let now = start
  return { now: () => now, advance: (ms: number) => (now += ms) }
}

async function setup(overrides: Partial<IssuerPolicy> = {}) {
  const key: TestKey = await makeKey()
  const source = new StaticKeySource()
  const imported = importVerificationKey(key.publicJwk, ['RS256'])
  if (typeof imported === 'string') throw new Error(imported)
  source.add(imported)
  const time = clock()
  const revocations = new RevocationSet(ISS)
  const verifier = new TokenVerifier({
    issuers: [
      {
        issuer: ISS,
        own: true,
        audiences: [AUD],
        algorithms: ['RS256'],
        types: ['at+jwt'],
        clockToleranceS: 30,
        keySource: source,
        revocations,
        ...overrides,
      },
    ],
    profile: 'access_token',
    now: time.now,
  })
  const nowS = () => Math.floor(time.now() / 1000)
  const claims = (over: Record<string, unknown> = {}) => {
    const c: Record<string, unknown> = {
      iss: ISS,
      sub: 'user-1',
      aud: AUD,
      iat: nowS(),
      exp: nowS() + 900,
      jti: randomUUID(),
      client_id: 'web',
      sid: 'sess-1',
      roles: ['user', 'admin'],
      scope: 'profile orders',
      ...over,
    }
    for (const [k, v] of Object.entries(c)) if (v === undefined) delete c[k]
    return c
  }
  const header = (over: Record<string, unknown> = {}) => {
    const h: Record<string, unknown> = { alg: 'RS256', typ: 'at+jwt', kid: key.kid, ...over }
    for (const [k, v] of Object.entries(h)) if (v === undefined) delete h[k]
    return h
  }
  const token = (c: Record<string, unknown> = {}, h: Record<string, unknown> = {}) =>
    signRsa(header(h), claims(c), key.privateKey)
  return { key, source, time, verifier, revocations, claims, header, token }
}

async function refusal(verifier: TokenVerifier, token: string): Promise<string> {
  try {
    await verifier.verify(token)
    return 'accepted'
  } catch (err) {
    return err instanceof KeygateError ? err.code : `unexpected ${String(err)}`
  }
}

t.test('a valid access token yields the identity it carries', async (t) => {
  const { verifier, token, key } = await setup()
  const jwt = token({ sub: 'u-42', roles: ['admin'], scope: 'a b' })
  const id = await verifier.verify(jwt)
  t.equal(id.subject, 'u-42')
  t.equal(id.principal, 'u-42', 'the own issuer’s subjects are principals as they are')
  t.equal(id.issuer, ISS)
  t.same(id.roles, ['admin'])
  t.same(id.scopes, ['a', 'b'])
  t.equal(id.sessionId, 'sess-1')
  t.equal(id.clientId, 'web')
  t.equal(id.keyId, key.kid)
  t.equal(id.source, 'token')
  t.equal(id.token, jwt, 'the raw token is kept for relaying')
})

t.test('typ is compared case-insensitively with an optional application/ prefix', async (t) => {
  const { verifier, token } = await setup()
  for (const typ of ['at+jwt', 'AT+JWT', 'application/at+jwt', 'Application/At+Jwt']) {
    t.equal(await refusal(verifier, token({}, { typ })), 'accepted', typ)
  }
  for (const typ of [undefined, 'JWT', 'rt+jwt', 'dpop+jwt', 'id+jwt', 'at+jwt ', 'application/jwt', 7]) {
    t.equal(await refusal(verifier, token({}, { typ })), 'KG_TOKEN_TYPE_INVALID', String(typ))
  }
})

t.test('an untrusted iss is refused before any key lookup', async (t) => {
  const { verifier, token, source } = await setup()
  for (const iss of [`${ISS}/`, ISS.toUpperCase(), 'https://evil.test', '', 42, null, undefined]) {
    t.equal(await refusal(verifier, token({ iss })), 'KG_TOKEN_ISSUER_UNKNOWN', String(iss))
  }
  t.equal(source.lookups, 0, 'no key was looked up')
})

t.test('alg games never reach a key', async (t) => {
  const { verifier, claims, header, key, source } = await setup()
  for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
    t.equal(
      await refusal(verifier, unsigned(header({ alg }), claims())),
      'KG_TOKEN_MALFORMED',
      `${alg} unsigned`,
    )
    t.equal(
      await refusal(verifier, unsigned(header({ alg }), claims(), 'c2ln')),
      'KG_TOKEN_ALG_NOT_ALLOWED',
      alg,
    )
  }
  const pem = await exportSPKI(
    await crypto.subtle.importKey(
      'jwk',
      key.publicJwk,
      { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
      true,
      ['verify'],
    ),
  )
  const publicKey = KeyObject.from(
    await crypto.subtle.importKey(
      'jwk',
      key.publicJwk,
      { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
      true,
      ['verify'],
    ),
  )
  const secrets: Array<string | Buffer> = [
    pem,
    pem.trimEnd(),
    publicKey.export({ type: 'pkcs1', format: 'pem' }) as string,
    publicKey.export({ type: 'spki', format: 'der' }) as Buffer,
    JSON.stringify(await exportJWK(publicKey)),
    '',
    'secret',
  ]
  for (const secret of secrets) {
    for (const alg of ['HS256', 'hs256']) {
      t.equal(
        await refusal(verifier, signHmac(header({ alg }), claims(), secret)),
        'KG_TOKEN_ALG_NOT_ALLOWED',
      )
    }
  }
  for (const alg of ['RS512', 'rs256', 'RS256 ', 'ES256', 'PS256', '', 5, null]) {
    t.equal(
      await refusal(verifier, signRsa(header({ alg }), claims(), key.privateKey)),
      'KG_TOKEN_ALG_NOT_ALLOWED',
    )
  }
  t.equal(source.lookups, 0, 'no key was looked up for any of them')
})

t.test('a key is used only with the algorithm it is bound to', async (t) => {
  const { verifier, claims, header, key } = await setup({ algorithms: ['RS256', 'PS256'] })
  // The key is bound to RS256; a PS256 token naming it is refused even though PS256 is allowed.
  t.equal(
    await refusal(verifier, signRsa(header({ alg: 'PS256' }), claims(), key.privateKey)),
    'KG_TOKEN_ALG_NOT_ALLOWED',
  )
})

t.test('ECDSA psychic signatures and Ed25519 confusion', async (t) => {
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const source = new StaticKeySource()
  const imported = importVerificationKey(
    { ...ec.publicKey.export({ format: 'jwk' }), kid: 'ec', alg: 'ES256' },
    ['ES256'],
  )
  if (typeof imported === 'string') throw new Error(imported)
  source.add(imported)
  const verifier = new TokenVerifier({
    issuers: [
      {
        issuer: ISS,
        audiences: [AUD],
        algorithms: ['ES256'],
        types: ['at+jwt'],
        clockToleranceS: 0,
        keySource: source,
      },
    ],
    profile: 'access_token',
  })
  const now = Math.floor(Date.now() / 1000)
  const payload = { iss: ISS, sub: 's', aud: AUD, iat: now, exp: now + 60, jti: 'j', client_id: 'c' }
  const header = { alg: 'ES256', typ: 'at+jwt', kid: 'ec' }
  t.equal(await refusal(verifier, signWith(header, payload, ec.privateKey, 'ES256')), 'accepted')
  const zero = Buffer.alloc(64).toString('base64url')
  t.equal(await refusal(verifier, unsigned(header, payload, zero)), 'KG_TOKEN_SIGNATURE_INVALID', 'r = s = 0')
  const der = Buffer.from('3006020100020100', 'hex').toString('base64url')
  t.equal(await refusal(verifier, unsigned(header, payload, der)), 'KG_TOKEN_SIGNATURE_INVALID', 'DER zero')
})

t.test('headers that carry keys, crit, and bad kids are refused', async (t) => {
  const { verifier, token, source } = await setup()
  const jwk = { kty: 'RSA', n: 'x', e: 'AQAB' }
  t.equal(await refusal(verifier, token({}, { jwk })), 'KG_TOKEN_MALFORMED')
  t.equal(await refusal(verifier, token({}, { jku: 'http://127.0.0.1:1/jwks' })), 'KG_TOKEN_MALFORMED')
  t.equal(await refusal(verifier, token({}, { x5u: 'http://127.0.0.1:1/cert' })), 'KG_TOKEN_MALFORMED')
  t.equal(await refusal(verifier, token({}, { x5c: ['MIIB'] })), 'KG_TOKEN_MALFORMED')
  t.equal(await refusal(verifier, token({}, { crit: ['exp'] })), 'KG_TOKEN_CRIT_UNSUPPORTED')
  t.equal(await refusal(verifier, token({}, { crit: ['b64'], b64: false })), 'KG_TOKEN_CRIT_UNSUPPORTED')
  for (const kid of [undefined, '', 7, 'x'.repeat(300)]) {
    t.equal(
      await refusal(verifier, token({}, { kid })),
      'KG_TOKEN_MALFORMED',
      `kid ${String(kid).slice(0, 10)}`,
    )
  }
  for (const kid of ['../../etc/passwd', "' OR 1=1 --", '$(reboot)', '|id', 'unknown']) {
    t.equal(await refusal(verifier, token({}, { kid })), 'KG_TOKEN_KEY_UNKNOWN', kid)
  }
  t.equal(source.lookups, 5, 'only the well-formed kids were looked up, as exact map keys')
})

t.test('signatures: altered, truncated, from another key', async (t) => {
  const { verifier, token } = await setup()
  const good = token()
  const [h, p, s] = good.split('.') as [string, string, string]
  const flipped = (s[5] === 'A' ? 'B' : 'A') + ''
  t.equal(
    await refusal(verifier, `${h}.${p}.${s.slice(0, 5)}${flipped}${s.slice(6)}`),
    'KG_TOKEN_SIGNATURE_INVALID',
  )
  t.equal(await refusal(verifier, `${h}.${p}.${s.slice(0, 40)}`), 'KG_TOKEN_SIGNATURE_INVALID')
  const other = await makeKey()
  const { claims, header } = await setup()
  t.equal(
    await refusal(verifier, signRsa(header(), claims({ iss: ISS }), other.privateKey)),
    'KG_TOKEN_KEY_UNKNOWN',
  )
  const [, p2] = token({ sub: 'admin' }).split('.')
  t.equal(await refusal(verifier, `${h}.${p2}.${s}`), 'KG_TOKEN_SIGNATURE_INVALID', 'payload swapped')
})

t.test('claims: required, typed, and checked against the clock', async (t) => {
  const { verifier, token, time } = await setup()
  const now = Math.floor(time.now() / 1000)
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['expired', { exp: now - 31 }, 'KG_TOKEN_EXPIRED'],
    ['expired within tolerance', { exp: now - 10 }, 'accepted'],
    ['exp missing', { exp: undefined }, 'KG_TOKEN_CLAIM_INVALID'],
    ['exp a string', { exp: String(now + 60) }, 'KG_TOKEN_CLAIM_INVALID'],
    ['nbf in the future', { nbf: now + 120 }, 'KG_TOKEN_NOT_YET_VALID'],
    ['nbf within tolerance', { nbf: now + 10 }, 'accepted'],
    ['nbf a string', { nbf: 'now' }, 'KG_TOKEN_CLAIM_INVALID'],
    ['iat in the future', { iat: now + 120 }, 'KG_TOKEN_NOT_YET_VALID'],
    ['iat missing', { iat: undefined }, 'KG_TOKEN_CLAIM_INVALID'],
    ['aud missing', { aud: undefined }, 'KG_TOKEN_CLAIM_INVALID'],
    ['aud foreign', { aud: 'other-api' }, 'KG_TOKEN_AUDIENCE_INVALID'],
    ['aud list without ours', { aud: ['a', 'b'] }, 'KG_TOKEN_AUDIENCE_INVALID'],
    ['aud list with ours', { aud: ['a', AUD] }, 'accepted'],
    ['aud a number', { aud: 5 }, 'KG_TOKEN_CLAIM_INVALID'],
    ['aud an empty list', { aud: [] }, 'KG_TOKEN_CLAIM_INVALID'],
    ['aud differently cased', { aud: AUD.toUpperCase() }, 'KG_TOKEN_AUDIENCE_INVALID'],
    ['sub missing', { sub: undefined }, 'KG_TOKEN_CLAIM_INVALID'],
    ['sub empty', { sub: '' }, 'KG_TOKEN_CLAIM_INVALID'],
    ['jti missing', { jti: undefined }, 'KG_TOKEN_CLAIM_INVALID'],
    ['client_id missing', { client_id: undefined }, 'KG_TOKEN_CLAIM_INVALID'],
    ['roles a string', { roles: 'admin' }, 'KG_TOKEN_CLAIM_INVALID'],
    ['roles with a number', { roles: ['admin', 1] }, 'KG_TOKEN_CLAIM_INVALID'],
    ['scope a list', { scope: ['a'] }, 'KG_TOKEN_CLAIM_INVALID'],
    ['sid a number', { sid: 1 }, 'KG_TOKEN_CLAIM_INVALID'],
  ]
  for (const [name, claims, expected] of cases)
    t.equal(await refusal(verifier, token(claims)), expected, name)
  // Every required claim replaced by each JSON type it must not have.
  const wrongTypes: Record<string, unknown[]> = {
    iss: [null, true, 0, [], {}],
    sub: [null, true, 0, [], {}],
    jti: [null, true, 0, [], {}],
    client_id: [null, true, 0, [], {}],
    aud: [null, true, 0, {}, [1]],
    exp: [null, true, 'x', [], {}],
    iat: [null, true, 'x', [], {}],
  }
  for (const [claim, values] of Object.entries(wrongTypes)) {
    for (const value of values) {
      const result = await refusal(verifier, token({ [claim]: value }))
      t.not(result, 'accepted', `${claim} = ${JSON.stringify(value)} is refused (${result})`)
    }
  }
})

t.test(
  'the verified cache: hits skip the signature, never outlive exp, a removed key or a revocation',
  async (t) => {
    const { verifier, token, source, time, revocations, key } = await setup()
    const now = Math.floor(time.now() / 1000)
    const jwt = token({ exp: now + 60, sid: 'sess-9' })
    await verifier.verify(jwt)
    await verifier.verify(jwt)
    t.equal(source.lookups, 1, 'the second verification came from the cache')
    time.advance(60_000 + 29_000)
    t.equal(await refusal(verifier, jwt), 'accepted', 'within tolerance after exp')
    time.advance(2_000)
    t.equal(await refusal(verifier, jwt), 'KG_TOKEN_EXPIRED', 'the cache does not outlive exp + tolerance')

    const jwt2 = token()
    await verifier.verify(jwt2)
    source.stale = true
    t.equal(await refusal(verifier, jwt2), 'KG_KEYS_STALE', 'a stale key source refuses cached tokens too')
    source.stale = false

    revocations.apply([
      { type: 'session', sessionId: 'sess-1', createdAt: time.now(), expiresAt: time.now() + 900_000 },
    ])
    t.equal(verifier.cache.size, 0, 'the revocation set dropped the cached verification it covers')
    t.equal(await refusal(verifier, jwt2), 'KG_TOKEN_REVOKED', 'a revocation covers cached tokens')

    const jwt3 = token({ sid: 'sess-2' })
    await verifier.verify(jwt3)
    await verifier.verify(token({ sid: 'sess-3' }))
    t.equal(verifier.cache.size, 2)
    source.remove(key.kid)
    t.equal(verifier.cache.size, 0, 'removing the key dropped its entries')
    t.equal(await refusal(verifier, jwt3), 'KG_TOKEN_KEY_UNKNOWN')
  },
)

t.test('revocation by user and time, by jti and by key', async (t) => {
  const { verifier, token, time, revocations, key } = await setup()
  const now = time.now()
  const before = token({ sub: 'u1', iat: Math.floor(now / 1000) - 5, sid: 'a' })
  revocations.apply([
    { type: 'user', subject: 'u1', issuedBefore: now, createdAt: now, expiresAt: now + 900_000 },
  ])
  t.equal(await refusal(verifier, before), 'KG_TOKEN_REVOKED')
  const sameSecondBefore = token({ sub: 'u1', iat: (now - 1) / 1000, sid: 'b0' })
  t.equal(await refusal(verifier, sameSecondBefore), 'KG_TOKEN_REVOKED', 'a millisecond before: revoked')
  const sameSecondAfter = token({ sub: 'u1', iat: (now + 1) / 1000, sid: 'b1' })
  t.equal(await refusal(verifier, sameSecondAfter), 'accepted', 'a millisecond after (a new login): accepted')
  time.advance(2_000)
  const after = token({ sub: 'u1', iat: Math.floor(time.now() / 1000), sid: 'b' })
  t.equal(await refusal(verifier, after), 'accepted', 'a token issued after the revocation passes')
  const jti = randomUUID()
  revocations.apply([{ type: 'token', tokenId: jti, createdAt: now, expiresAt: now + 900_000 }])
  t.equal(await refusal(verifier, token({ jti, sid: 'c' })), 'KG_TOKEN_REVOKED')
  revocations.apply([{ type: 'key', kid: key.kid, createdAt: now, expiresAt: now + 900_000 }])
  t.equal(await refusal(verifier, token({ sid: 'd' })), 'KG_TOKEN_REVOKED')
  revocations.prune(now + 900_001)
  t.equal(revocations.size, 0, 'entries go once the tokens they cover have expired')
})

t.test('assertions and access tokens are never mistaken for each other', async (t) => {
  const { verifier, token } = await setup()
  const ed = generateKeyPairSync('ed25519')
  const gw = new StaticKeySource()
  const imported = importVerificationKey(
    { ...ed.publicKey.export({ format: 'jwk' }), kid: 'gw', alg: 'EdDSA' },
    ['EdDSA'],
  )
  if (typeof imported === 'string') throw new Error(imported)
  gw.add(imported)
  const GW = 'http://gateway.test'
  const assertions = new TokenVerifier({
    issuers: [
      {
        issuer: GW,
        audiences: ['profile'],
        algorithms: ['EdDSA'],
        types: ['kg-assertion+jwt'],
        clockToleranceS: 30,
        keySource: gw,
      },
    ],
    profile: 'assertion',
    subjectIssuers: [{ issuer: ISS, own: true }],
  })
  const now = Math.floor(Date.now() / 1000)
  const claims = {
    iss: GW,
    aud: 'profile',
    sub: 'user-1',
    iat: now,
    exp: now + 60,
    jti: randomUUID(),
    roles: ['user'],
    scope: 'profile',
    sid: 'sess-1',
    at_jti: 'at-1',
    at_iat: now - 10,
    at_iss: ISS,
    at_kid: 'rsa-kid',
  }
  const assertion = signWith(
    { alg: 'EdDSA', typ: 'kg-assertion+jwt', kid: 'gw' },
    claims,
    ed.privateKey,
    'EdDSA',
  )
  const id = await assertions.verify(assertion)
  t.equal(id.source, 'assertion')
  t.equal(id.tokenId, 'at-1', 'identity follows the access token the assertion vouches for')
  t.equal(id.issuer, ISS)
  t.equal(id.keyId, 'rsa-kid')
  t.equal(id.token, undefined)
  t.equal(id.principal, 'user-1', 'the principal is that of the access token’s issuer')
  const stranger = signWith(
    { alg: 'EdDSA', typ: 'kg-assertion+jwt', kid: 'gw' },
    { ...claims, jti: randomUUID(), at_iss: 'https://untrusted.test' },
    ed.privateKey,
    'EdDSA',
  )
  t.equal(
    await refusal(assertions, stranger),
    'KG_TOKEN_CLAIM_INVALID',
    'an assertion about a token of an issuer not trusted here is refused',
  )

  t.equal(
    await refusal(verifier, assertion),
    'KG_TOKEN_ISSUER_UNKNOWN',
    'an assertion is not an access token',
  )
  t.equal(
    await refusal(assertions, token()),
    'KG_TOKEN_ISSUER_UNKNOWN',
    'an access token is not an assertion',
  )
  const asAccess = signWith({ alg: 'EdDSA', typ: 'at+jwt', kid: 'gw' }, claims, ed.privateKey, 'EdDSA')
  t.equal(await refusal(assertions, asAccess), 'KG_TOKEN_TYPE_INVALID', 'typ must say assertion')
  const otherAudience = signWith(
    { alg: 'EdDSA', typ: 'kg-assertion+jwt', kid: 'gw' },
    { ...claims, aud: 'orders' },
    ed.privateKey,
    'EdDSA',
  )
  t.equal(
    await refusal(assertions, otherAudience),
    'KG_TOKEN_AUDIENCE_INVALID',
    'an assertion for another service',
  )
  const { at_jti: _dropped, ...incomplete } = claims
  const missing = signWith(
    { alg: 'EdDSA', typ: 'kg-assertion+jwt', kid: 'gw' },
    incomplete,
    ed.privateKey,
    'EdDSA',
  )
  t.equal(await refusal(assertions, missing), 'KG_TOKEN_CLAIM_INVALID')
})
