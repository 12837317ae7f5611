/**
 * One JWK imported as a verification key: only its public members, bound to one allowed algorithm, and
 * refused (with a reason, never a throw) when it cannot verify with an allowed algorithm.
 */
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto'
import t from 'tap'
import { importVerificationKey, MAX_KID_LENGTH } from '../../../lib/auth/jwk.js'

const jwkOf = (key: KeyObject, extra: Record<string, unknown> = {}) => ({
  ...(key.export({ format: 'jwk' }) as Record<string, unknown>),
  ...extra,
})

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
const rsaJwk = jwkOf(rsa.publicKey, { kid: 'rsa-1' })
const ec = jwkOf(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey, { kid: 'ec-1' })
const ed = jwkOf(generateKeyPairSync('ed25519').publicKey, { kid: 'ed-1' })

t.test('an RSA key binds to the one allowed algorithm that fits it', async (t) => {
  const key = importVerificationKey(rsaJwk, ['RS256'])
  if (typeof key === 'string') return t.fail(key)
  t.equal(key.kid, 'rsa-1')
  t.equal(key.alg, 'RS256')
  t.equal(key.key.type, 'public')
  t.equal(key.key.asymmetricKeyType, 'rsa')
})

t.test('the JWK’s own alg binds it, and must be allowed', async (t) => {
  const bound = importVerificationKey({ ...rsaJwk, alg: 'PS256' }, ['RS256', 'PS256'])
  t.equal(typeof bound === 'string' ? bound : bound.alg, 'PS256')
  t.equal(importVerificationKey({ ...rsaJwk, alg: 'RS512' }, ['RS256']), 'algorithm not allowed or ambiguous')
  t.equal(importVerificationKey({ ...rsaJwk, alg: 42 }, ['RS256']), 'algorithm not allowed or ambiguous')
})

t.test('without alg, two allowed algorithms that fit the key are ambiguous', async (t) => {
  t.equal(importVerificationKey(rsaJwk, ['RS256', 'PS256']), 'algorithm not allowed or ambiguous')
  const only = importVerificationKey(rsaJwk, ['RS256', 'ES256'])
  t.equal(typeof only === 'string' ? only : only.alg, 'RS256', 'only one of them fits an RSA key')
})

t.test('EC and Ed25519 keys bind by curve', async (t) => {
  const es = importVerificationKey(ec, ['ES256', 'RS256'])
  t.equal(typeof es === 'string' ? es : es.alg, 'ES256')
  const eddsa = importVerificationKey(ed, ['EdDSA'])
  t.equal(typeof eddsa === 'string' ? eddsa : eddsa.alg, 'EdDSA')
  t.equal(importVerificationKey({ ...ec, alg: 'RS256' }, ['RS256']), 'key type does not fit alg')
  t.equal(importVerificationKey({ ...ec, crv: 'P-384' }, ['ES256']), 'algorithm not allowed or ambiguous')
})

t.test('private members are never imported: the key is public whatever the JWK carries', async (t) => {
  const privateJwk = jwkOf(rsa.privateKey, { kid: 'rsa-private' })
  t.ok('d' in privateJwk, 'the JWK carries the private exponent')
  const key = importVerificationKey(privateJwk, ['RS256'])
  if (typeof key === 'string') return t.fail(key)
  t.equal(key.key.type, 'public')
})

t.test('each unusable JWK is refused with its reason', async (t) => {
  const cases: Array<[unknown, string]> = [
    [null, 'not an object'],
    [[rsaJwk], 'not an object'],
    ['{}', 'not an object'],
    [{ ...rsaJwk, kid: '' }, 'no usable kid'],
    [{ ...rsaJwk, kid: 7 }, 'no usable kid'],
    [{ ...rsaJwk, kid: 'k'.repeat(MAX_KID_LENGTH + 1) }, 'no usable kid'],
    [{ ...rsaJwk, use: 'enc' }, 'not a signing key'],
    [{ ...rsaJwk, key_ops: ['encrypt'] }, 'key_ops excludes verify'],
    [{ ...rsaJwk, key_ops: 'verify' }, 'key_ops excludes verify'],
    [{ ...rsaJwk, kty: 'oct' }, 'algorithm not allowed or ambiguous'],
    [{ ...rsaJwk, n: undefined }, 'missing key members'],
    [{ ...rsaJwk, e: 65537 }, 'missing key members'],
    [{ ...rsaJwk, n: 'not-a-modulus!' }, 'RSA key too short'],
    [
      jwkOf(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey, { kid: 'short' }),
      'RSA key too short',
    ],
  ]
  for (const [jwk, reason] of cases) t.equal(importVerificationKey(jwk, ['RS256']), reason, reason)
  t.equal(
    importVerificationKey({ ...ec, x: 'AAAA', y: 'AAAA' }, ['ES256']),
    'invalid key material',
    'a point off the curve',
  )
  t.type(
    importVerificationKey({ ...rsaJwk, use: 'sig', key_ops: ['verify'] }, ['RS256']),
    'object',
    'sig/verify',
  )
  t.type(
    importVerificationKey({ ...rsaJwk, kid: 'k'.repeat(MAX_KID_LENGTH) }, ['RS256']),
    'object',
    'a kid of the longest length',
  )
})

t.test('a key without kid is imported under its RFC 7638 thumbprint, marked unnamed', async (t) => {
  const { kid: _kid, ...bare } = rsaJwk
  const key = importVerificationKey(bare, ['RS256'])
  if (typeof key === 'string') return t.fail(key)
  t.equal(key.unnamed, true)
  t.equal(key.alg, 'RS256')
  const thumbprint = createHash('sha256')
    .update(JSON.stringify({ e: rsaJwk.e, kty: 'RSA', n: rsaJwk.n }))
    .digest('base64url')
  t.equal(key.kid, `(no kid) ${thumbprint}`, 'a label no token can name as its kid')
  const named = importVerificationKey(rsaJwk, ['RS256'])
  t.notOk(typeof named !== 'string' && named.unnamed, 'a key with kid is not unnamed')
  t.equal(importVerificationKey(bare, ['RS256', 'PS256']), 'algorithm not allowed or ambiguous')
})
