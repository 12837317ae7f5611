/**
 * `alg` games (RFC 8725 §2.1 and §3.1, OWASP JWT cheat sheet, jwt_tool's `-X a`/`-X n`/`-X k`/`-X p` modes,
 * CVE-2015-9235, CVE-2022-21449, CVE-2023-48223 and its whitespace sequel): `none` in every spelling, signatures
 * removed, cut or altered, HMAC keyed with the issuer's public key in every encoding a library might take,
 * weak HMAC secrets, ECDSA "psychic" zero signatures, `alg` strings that are almost right, and algorithms that
 * do not match the key. The verifier allows RS256 only and binds each key to one algorithm, so every case
 * must be refused.
 */
import { generateKeyPairSync } from 'node:crypto'
import { b64url, signingInput } from '../../helpers/jws.js'
import { type CorpusContext, type HostileCase, invalidToken as refused, signJws } from './context.js'

/** `none` spelled every way a case-insensitive or sloppy comparison might let through. */
const NONE_SPELLINGS = [
  'none',
  'None',
  'NONE',
  'nOnE',
  'NoNe',
  'none ',
  ' none',
  'none\u0000',
  'nonе' /* Cyrillic е */,
]

/** Secrets found in tutorials, defaults and jwt_tool's wordlist style; `full` adds derived variants. */
const WEAK_SECRETS = [
  '',
  'secret',
  'password',
  '123456',
  'changeme',
  'keygate',
  'keygate-api',
  'jwt',
  'key',
  'your-256-bit-secret',
  'secretkey',
  'admin',
]
const WEAK_STEMS = ['secret', 'password', 'key', 'jwt', 'token', 'keygate', 'default', 'test', 'dev', 'admin']
const WEAK_SUFFIXES = ['', '1', '123', '!', '_key', '-secret', '2025', '2026', 's3cr3t']

/** Almost-RS256: what a lax comparison, normalisation or lookup table might map to RS256. */
const NON_CANONICAL_ALGS: unknown[] = [
  'rs256',
  'Rs256',
  'RS256 ',
  ' RS256',
  'RS256\u0000',
  'RS256\n',
  'RS 256',
  'RS-256',
  'RSA256',
  'RS２５６',
  'RЅ256' /* Cyrillic Ѕ */,
  'RS256\u200b',
  'rsa-sha256',
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  'RS256,HS256',
  '',
  ['RS256'],
  { RS256: true },
  256,
  true,
  null,
]

export function algCases(ctx: CorpusContext): HostileCase[] {
  const cases: HostileCase[] = []
  const add = (name: string, token: string, expect = refused('KG_TOKEN_ALG_NOT_ALLOWED')) =>
    cases.push({ family: 'alg', name, token, expect })
  const valid = ctx.valid()
  const validSignature = valid.split('.')[2]!

  // alg: none, with no signature, a junk one, and the signature of a genuine token kept (signature exclusion).
  for (const alg of NONE_SPELLINGS) {
    const header = ctx.header({ alg })
    const input = signingInput(header, ctx.claims({ sub: 'admin', roles: ['admin'] }))
    const label = JSON.stringify(alg)
    add(
      `alg ${label}, empty signature`,
      `${input}.`,
      refused('KG_TOKEN_MALFORMED', 'KG_TOKEN_ALG_NOT_ALLOWED'),
    )
    add(`alg ${label}, junk signature`, `${input}.AAAA`)
    add(`alg ${label}, a genuine token's signature`, `${input}.${validSignature}`)
    add(
      `alg ${label}, no kid, no typ`,
      `${signingInput({ alg }, ctx.claims({ sub: 'admin' }))}.`,
      refused('KG_TOKEN_MALFORMED', 'KG_TOKEN_ALG_NOT_ALLOWED'),
    )
  }

  // RS256 whose signature was removed, cut short or altered; signatures moved between tokens.
  const [h, p] = valid.split('.') as [string, string, string]
  const signature = Buffer.from(validSignature, 'base64url')
  const withSignature = (bytes: Buffer) => `${h}.${p}.${b64url(bytes)}`
  const bad = refused('KG_TOKEN_SIGNATURE_INVALID', 'KG_TOKEN_MALFORMED')
  add('signature removed (two dots kept)', `${h}.${p}.`, refused('KG_TOKEN_MALFORMED'))
  add('signature truncated by one byte', withSignature(signature.subarray(0, -1)), bad)
  add('signature truncated to half', withSignature(signature.subarray(0, 128)), bad)
  add('signature truncated to one byte', withSignature(signature.subarray(0, 1)), bad)
  add('signature with one extra byte', withSignature(Buffer.concat([signature, Buffer.from([0])])), bad)
  add('signature with a leading zero byte', withSignature(Buffer.concat([Buffer.from([0]), signature])), bad)
  const flipped = Buffer.from(signature)
  flipped[flipped.length - 1]! ^= 1
  add('signature with its last bit flipped', withSignature(flipped), bad)
  const flippedFirst = Buffer.from(signature)
  flippedFirst[0]! ^= 0x80
  add('signature with its first bit flipped', withSignature(flippedFirst), bad)
  add('signature of all zero bytes', withSignature(Buffer.alloc(signature.length)), bad)
  add('signature of all 0xff bytes (≥ the modulus)', withSignature(Buffer.alloc(signature.length, 0xff)), bad)
  add(
    'signature equal to the modulus n',
    withSignature(Buffer.from(ctx.issuer.publicJwk.n as string, 'base64url')),
    bad,
  )
  add(
    'signature = 1',
    withSignature(Buffer.concat([Buffer.alloc(signature.length - 1), Buffer.from([1])])),
    bad,
  )
  add('signature doubled', withSignature(Buffer.concat([signature, signature])), bad)
  const forgedClaims = signingInput(ctx.header(), ctx.claims({ sub: 'admin', roles: ['admin'] }))
  add("another token's signature on changed claims", `${forgedClaims}.${validSignature}`, bad)
  add(
    'header changed after signing (extra member)',
    `${b64url(JSON.stringify({ ...ctx.header(), x: 1 }))}.${p}.${validSignature}`,
    bad,
  )
  add(
    'RS256 header with an HMAC of the public key as signature',
    signJws(
      ctx.header(),
      ctx.claims(),
      'HS256',
      ctx.issuer.publicKey.export({ type: 'spki', format: 'pem' }),
    ),
    bad,
  )

  // HMAC keyed with the issuer's public key, in every encoding a library might accept as a secret.
  const spkiPem = ctx.issuer.publicKey.export({ type: 'spki', format: 'pem' }) as string
  const pkcs1Pem = ctx.issuer.publicKey.export({ type: 'pkcs1', format: 'pem' }) as string
  const jwk = ctx.issuer.publicJwk
  const publicKeyForms: Array<[string, string | Buffer]> = [
    ['SPKI PEM', spkiPem],
    ['SPKI PEM without trailing newline', spkiPem.trimEnd()],
    ['SPKI PEM with leading whitespace', ` \n\t${spkiPem}`],
    ['SPKI PEM with CRLF line ends', spkiPem.replaceAll('\n', '\r\n')],
    ['PKCS#1 PEM', pkcs1Pem],
    ['PKCS#1 PEM without trailing newline', pkcs1Pem.trimEnd()],
    ['SPKI DER', ctx.issuer.publicKey.export({ type: 'spki', format: 'der' })],
    ['PKCS#1 DER', ctx.issuer.publicKey.export({ type: 'pkcs1', format: 'der' })],
    ['JWK JSON as published', JSON.stringify(jwk)],
    ['JWK JSON, thumbprint members', JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n })],
    ['JWKS document JSON', JSON.stringify({ keys: [jwk] })],
    ['modulus bytes', Buffer.from(jwk.n as string, 'base64url')],
    ['modulus as base64url text', jwk.n as string],
  ]
  for (const alg of ['HS256', 'HS384', 'HS512']) {
    for (const [form, secret] of publicKeyForms) {
      add(
        `${alg} keyed with the public key as ${form}`,
        signJws(ctx.header({ alg }), ctx.claims({ sub: 'admin' }), alg, secret),
      )
    }
  }
  add(
    'HS256 with the public key, no kid',
    signJws({ alg: 'HS256', typ: 'at+jwt' }, ctx.claims(), 'HS256', spkiPem),
  )
  add(
    'HS256 with the public key, typ JWT',
    signJws({ alg: 'HS256', typ: 'JWT', kid: ctx.issuer.kid }, ctx.claims(), 'HS256', spkiPem),
    refused('KG_TOKEN_ALG_NOT_ALLOWED', 'KG_TOKEN_TYPE_INVALID'),
  )

  // Weak HMAC secrets (what a cracked or default secret would give an attacker).
  const secrets =
    ctx.depth === 'full'
      ? [...new Set([...WEAK_SECRETS, ...WEAK_STEMS.flatMap((s) => WEAK_SUFFIXES.map((x) => s + x))])]
      : WEAK_SECRETS
  for (const secret of secrets) {
    add(
      `HS256 with the weak secret ${JSON.stringify(secret)}`,
      signJws(ctx.header({ alg: 'HS256' }), ctx.claims({ sub: 'admin' }), 'HS256', secret),
    )
  }

  // ECDSA "psychic signatures" (CVE-2022-21449): r = s = 0 in either encoding, and EdDSA's all-zero analogue.
  const psychic: Array<[string, number]> = [
    ['ES256', 64],
    ['ES384', 96],
    ['ES512', 132],
    ['EdDSA', 64],
  ]
  for (const [alg, bytes] of psychic) {
    const input = signingInput(ctx.header({ alg }), ctx.claims({ sub: 'admin' }))
    add(`${alg} zero signature (r = s = 0, fixed length)`, `${input}.${b64url(Buffer.alloc(bytes))}`)
    add(
      `${alg} zero signature, no kid`,
      `${signingInput({ alg, typ: 'at+jwt' }, ctx.claims())}.${b64url(Buffer.alloc(bytes))}`,
    )
  }
  const derZero = Buffer.from([0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00]) // SEQUENCE { 0, 0 }
  add(
    'ES256 zero signature, DER encoded (MAYCAQACAQA)',
    `${signingInput(ctx.header({ alg: 'ES256' }), ctx.claims())}.${b64url(derZero)}`,
  )
  add(
    'RS256 header with a DER zero ECDSA signature',
    `${signingInput(ctx.header(), ctx.claims())}.${b64url(derZero)}`,
    bad,
  )

  // alg strings that are almost RS256, and alg values that are not strings, over a genuine RS256 signature.
  for (const alg of NON_CANONICAL_ALGS) {
    add(
      `alg ${JSON.stringify(alg)} over a genuine RS256 signature`,
      ctx.signed(ctx.header({ alg }), ctx.claims()),
    )
  }
  add('alg missing, genuine RS256 signature', ctx.signed(ctx.header({ alg: undefined }), ctx.claims()))

  // Algorithms that do not match the key: genuine signatures by the issuer's RSA key under other RSA algs,
  // and EC/EdDSA signatures by attacker keys under the issuer's kid.
  for (const alg of ['RS384', 'RS512', 'PS256', 'PS384', 'PS512']) {
    add(
      `${alg} by the issuer's own RSA key`,
      signJws(ctx.header({ alg }), ctx.claims(), alg, ctx.issuer.privateKey),
    )
  }
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const ed = generateKeyPairSync('ed25519')
  add(
    "ES256 by an attacker key under the issuer's RSA kid",
    signJws(ctx.header({ alg: 'ES256' }), ctx.claims(), 'ES256', ec.privateKey),
  )
  add(
    "EdDSA by an attacker key under the issuer's RSA kid",
    signJws(ctx.header({ alg: 'EdDSA' }), ctx.claims(), 'EdDSA', ed.privateKey),
  )
  add(
    "RS256 by the attacker's RSA key under the issuer's kid",
    signJws(ctx.header(), ctx.claims(), 'RS256', ctx.attacker.privateKey),
    bad,
  )
  return cases
}
