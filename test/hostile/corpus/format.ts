/**
 * The token's format and the request that carries it (RFC 7515 §7.1, RFC 7516, RFC 6750 §2, RFC 7235,
 * RFC 8725bis on JWE and JSON serializations, CVE-2022-36083 and CVE-2024-28176 for JWE key derivation and
 * decompression bombs): JWE, JWS JSON serialization, wrong segment counts, padding and non-base64url text,
 * bytes that are not UTF-8, tokens and headers past the size caps, several Authorization headers, other
 * schemes, and tokens in the query string or a cookie. Also the positive controls: what must still work.
 */
import { randomBytes } from 'node:crypto'
import { DEFAULT_MAX_TOKEN_BYTES } from '../../../lib/auth/compact.js'
import { b64url } from '../../helpers/jws.js'
import type { RawHeader } from '../../helpers/raw-http.js'
import {
  type CorpusContext,
  type Expectation,
  type HostileCase,
  invalidRequest,
  invalidToken,
  signJws,
} from './context.js'

const malformed = invalidToken('KG_TOKEN_MALFORMED')
const notBearer = invalidRequest('KG_INVALID_REQUEST')
const multiple = invalidRequest('KG_TOKEN_MULTIPLE')

export function formatCases(ctx: CorpusContext): HostileCase[] {
  const cases: HostileCase[] = []
  const add = (name: string, token: string, expect: Expectation = malformed) =>
    cases.push({ family: 'format', name, token, expect })
  const send = (name: string, headers: RawHeader[], expect: Expectation, query?: string) =>
    cases.push({ family: 'format', name, headers, expect, ...(query === undefined ? {} : { query }) })
  const valid = ctx.valid()
  const [h, p, s] = valid.split('.') as [string, string, string]
  const r = (n: number) => b64url(randomBytes(n))

  // JWE in compact form: five segments, whatever the header promises (and the two DoS headers of jose's CVEs).
  const jwe = (header: Record<string, unknown>) =>
    `${b64url(JSON.stringify(header))}.${r(256)}.${r(12)}.${r(64)}.${r(16)}`
  const kid = ctx.issuer.kid
  add(
    'JWE RSA-OAEP-256/A256GCM under the issuer kid',
    jwe({ alg: 'RSA-OAEP-256', enc: 'A256GCM', kid, cty: 'JWT' }),
  )
  add('JWE RSA1_5 (Bleichenbacher oracle)', jwe({ alg: 'RSA1_5', enc: 'A128CBC-HS256', kid }))
  add(
    'JWE PBES2 with p2c 2^31-1 (key derivation DoS)',
    jwe({ alg: 'PBES2-HS512+A256KW', enc: 'A256GCM', p2c: 2_147_483_647, p2s: r(16) }),
  )
  add('JWE dir with zip DEF (decompression bomb)', jwe({ alg: 'dir', enc: 'A256GCM', zip: 'DEF' }))
  add(
    'JWE ECDH-ES with an embedded epk',
    jwe({ alg: 'ECDH-ES', enc: 'A256GCM', epk: { kty: 'EC', crv: 'P-256', x: r(32), y: r(32) } }),
  )

  // JWS JSON serializations: not token68 at all as a header value, or one base64url segment.
  const flattened = JSON.stringify({ protected: h, payload: p, signature: s })
  const general = JSON.stringify({
    payload: p,
    signatures: [
      { protected: h, signature: s },
      { protected: b64url('{"alg":"none"}'), signature: '' },
    ],
  })
  add('JWS JSON flattened serialization', flattened, notBearer)
  add('JWS JSON general serialization, two signatures', general, notBearer)
  add('JWS JSON flattened serialization, base64url-encoded', b64url(flattened))

  // Segment counts and empty segments.
  add('one segment', h)
  add('two segments (header.payload)', `${h}.${p}`)
  add('four segments', `${valid}.${s}`)
  add('a trailing dot', `${valid}.`)
  add('a leading dot', `.${valid}`)
  add('empty header segment', `.${p}.${s}`)
  add('empty payload segment', `${h}..${s}`)
  add('only dots', '..')
  add('the payload twice', `${h}.${p}.${p}.${s}`)

  // Padding, base64 instead of base64url, non-canonical encodings.
  add('header padded with =', `${h}=.${p}.${s}`, notBearer)
  add('payload padded with =', `${h}.${p}=.${s}`, notBearer)
  add('signature padded with ==', `${valid}==`)
  const std = (x: string) => x.replaceAll('-', '+').replaceAll('_', '/')
  add('signature in standard base64 (+ and /)', `${h}.${p}.${std(s)}${/[-_]/.test(s) ? '' : '+'}`)
  add(
    'payload in standard base64 (+ and /)',
    `${h}.${std(b64url(JSON.stringify(ctx.claims({ sub: '>>>???' }))))}.${s}`,
  )
  const lastIndex = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.indexOf(s.at(-1)!)
  const strayBits = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'[(lastIndex & ~3) | 1]!
  add('signature with non-zero trailing bits (non-canonical)', `${h}.${p}.${s.slice(0, -1)}${strayBits}`)
  add('a signature segment of length 4n+1', `${h}.${p}.${s}${'A'.repeat((5 - (s.length % 4)) % 4)}`)

  // Whitespace and bytes that are not token68 in the header value.
  const auth = (value: string | Buffer): RawHeader[] => [['authorization', value]]
  send('a space inside the token', auth(`Bearer ${h}.${p} .${s}`), notBearer)
  send('a tab inside the token', auth(`Bearer ${h}.${p}\t.${s}`), notBearer)
  send('the token quoted', auth(`Bearer "${valid}"`), notBearer)
  send('two tokens comma-separated', auth(`Bearer ${valid}, Bearer ${valid}`), notBearer)
  send('a token then another word', auth(`Bearer ${valid} extra`), notBearer)
  send('Bearer with nothing after it', auth('Bearer'), notBearer)
  send('Bearer with only spaces after it', auth('Bearer    '), notBearer)
  send(
    'bytes 0x80–0xff (not UTF-8) in the token',
    auth(Buffer.concat([Buffer.from('Bearer '), Buffer.from([0xff, 0xfe, 0x80]), Buffer.from(valid)])),
    notBearer,
  )
  send('UTF-8 non-ASCII in the token', auth(Buffer.from(`Bearer ${h}.${p}.é${s}`, 'utf8')), notBearer)
  send('a NUL byte in the header value (refused by the HTTP parser)', auth(`Bearer ${h}\u0000.${p}.${s}`), {
    kind: 'bad_http',
  })
  send('obs-fold line folding in the header (refused by the HTTP parser)', auth(`Bearer\r\n ${valid}`), {
    kind: 'bad_http',
  })

  // Size caps: a token over MAX_TOKEN_BYTES (401), headers over Node's 16 KiB header limit (431).
  const filler = (n: number) => `${h}.${p}.${'A'.repeat(Math.max(0, n - h.length - p.length - 2))}`
  add('a token one byte over the cap', filler(DEFAULT_MAX_TOKEN_BYTES + 1), { kind: 'too_large' })
  add('a 15 KB token', filler(15_000), { kind: 'too_large' })
  send('a 20 KB token (header section over 16 KiB)', auth(`Bearer ${filler(20_000)}`), { kind: 'too_large' })
  send('a 64 KB token', auth(`Bearer ${filler(65_536)}`), { kind: 'too_large' })
  send(
    'a valid token beside 200 padding headers (header section over 16 KiB)',
    [
      ...auth(`Bearer ${valid}`),
      ...Array.from({ length: 200 }, (_, i): RawHeader => [`x-pad-${i}`, 'p'.repeat(100)]),
    ],
    { kind: 'too_large' },
  )
  send(
    'a valid token beside a 20 KB cookie',
    [...auth(`Bearer ${valid}`), ['cookie', `c=${'x'.repeat(20_000)}`]],
    { kind: 'too_large' },
  )
  add(
    'a header member of 5 KB, under the cap',
    signJws({ ...ctx.header(), x: 'x'.repeat(5000) }, ctx.claims(), 'RS256', ctx.attacker.privateKey),
    invalidToken('KG_TOKEN_SIGNATURE_INVALID'),
  )
  const deep = `{${JSON.stringify(ctx.claims()).slice(1, -1)},"n":${'['.repeat(2500)}${']'.repeat(2500)}}`
  add(
    'a payload nested 2500 arrays deep',
    signJws(ctx.header(), deep, 'RS256', ctx.attacker.privateKey),
    invalidToken('KG_TOKEN_SIGNATURE_INVALID', 'KG_TOKEN_TOO_LARGE'),
  )
  const manyKeys = `{${JSON.stringify(ctx.claims()).slice(1, -1)},${Array.from({ length: 500 }, (_, i) => `"k${i}":0`).join(',')}}`
  add(
    'a payload with 500 members',
    signJws(ctx.header(), manyKeys, 'RS256', ctx.attacker.privateKey),
    invalidToken('KG_TOKEN_SIGNATURE_INVALID', 'KG_TOKEN_TOO_LARGE'),
  )

  // Several Authorization headers: ambiguous, whatever they hold.
  const bearer = `Bearer ${valid}`
  send(
    'two identical Authorization headers',
    [
      ['authorization', bearer],
      ['authorization', bearer],
    ],
    multiple,
  )
  send(
    'a valid and a garbage Authorization header',
    [
      ['authorization', bearer],
      ['authorization', 'Bearer x.y.z'],
    ],
    multiple,
  )
  send(
    'a garbage then a valid Authorization header',
    [
      ['authorization', 'Bearer x.y.z'],
      ['authorization', bearer],
    ],
    multiple,
  )
  send(
    'Authorization and AUTHORIZATION',
    [
      ['Authorization', bearer],
      ['AUTHORIZATION', bearer],
    ],
    multiple,
  )
  send(
    'a Basic and a Bearer Authorization header',
    [
      ['authorization', 'Basic dXNlcjpwYXNz'],
      ['authorization', bearer],
    ],
    multiple,
  )
  send(
    'ten Authorization headers',
    Array.from({ length: 10 }, (): RawHeader => ['authorization', bearer]),
    multiple,
  )
  send(
    'fifty Authorization headers (header section over 16 KiB)',
    Array.from({ length: 50 }, (): RawHeader => ['authorization', bearer]),
    { kind: 'too_large' },
  )

  // Other schemes carry no bearer token: the request simply has none (RFC 6750 §3.1: no error code).
  const missing: Expectation = { kind: 'missing' }
  send('Basic credentials', auth('Basic dXNlcjpwYXNz'), missing)
  send('scheme Token', auth(`Token ${valid}`), missing)
  send('scheme JWT', auth(`JWT ${valid}`), missing)
  send('scheme DPoP (DPoP is not supported)', auth(`DPoP ${valid}`), missing)
  send('no scheme, the token alone', auth(valid), missing)
  send('Bearer: with a colon', auth(`Bearer:${valid}`), missing)
  // RFC 7235 separates scheme and credentials by spaces only: a tab makes a malformed bearer credential.
  send('a tab between Bearer and the token', auth(`Bearer\t${valid}`), notBearer)

  // Tokens anywhere but the Authorization header.
  send('a valid token in the query string', [], invalidRequest('KG_TOKEN_IN_QUERY'), `?access_token=${valid}`)
  send(
    'a token in the query string beside a valid header',
    auth(bearer),
    invalidRequest('KG_TOKEN_IN_QUERY'),
    `?access_token=${valid}`,
  )
  send(
    'an empty access_token query parameter',
    auth(bearer),
    invalidRequest('KG_TOKEN_IN_QUERY'),
    '?access_token=',
  )
  send(
    'access_token after another query parameter',
    [],
    invalidRequest('KG_TOKEN_IN_QUERY'),
    `?page=1&access_token=${valid}`,
  )
  send(
    'a valid token in a cookie only',
    [['cookie', `access_token=${valid}; kg_access=${valid}; token=${valid}`]],
    missing,
  )
  return cases
}

/** Requests that must succeed: the corpus is only meaningful if the same entry points accept these. */
export function controlCases(ctx: CorpusContext): HostileCase[] {
  const accepted: Expectation = { kind: 'accepted' }
  const cases: HostileCase[] = []
  const token = (name: string, value: string) =>
    cases.push({ family: 'format', name, token: value, expect: accepted })
  const send = (name: string, value: string) =>
    cases.push({ family: 'format', name, headers: [['authorization', value]], expect: accepted })
  const valid = ctx.valid()
  token('a valid token', valid)
  for (const scheme of ['bearer', 'BEARER', 'bEaReR']) send(`scheme spelled ${scheme}`, `${scheme} ${valid}`)
  send('two spaces after the scheme', `Bearer  ${valid}`)
  send('trailing spaces after the token', `Bearer ${valid}   `)
  for (const typ of ['AT+JWT', 'application/at+jwt', 'Application/At+Jwt']) {
    token(`typ ${typ}`, ctx.signed(ctx.header({ typ }), ctx.claims()))
  }
  token(
    'aud a list holding ours',
    ctx.signed(ctx.header(), ctx.claims({ aud: ['other-api', ctx.issuer.audience] })),
  )
  token('an unknown claim', ctx.signed(ctx.header(), ctx.claims({ tenant: 'acme' })))
  token('an unknown, non-critical header member', ctx.signed(ctx.header({ cty: 'x', foo: 1 }), ctx.claims()))
  token('nbf in the past', ctx.signed(ctx.header(), ctx.claims({ nbf: ctx.now - 60 })))
  token(
    'exp 10 s ago (within the clock tolerance)',
    ctx.signed(ctx.header(), ctx.claims({ exp: ctx.now - 10 })),
  )
  token(
    'iat 10 s ahead (within the clock tolerance)',
    ctx.signed(ctx.header(), ctx.claims({ iat: ctx.now + 10 })),
  )
  token(
    'without the optional sid, roles and scope',
    ctx.signed(ctx.header(), ctx.claims({ sid: undefined, roles: undefined, scope: undefined })),
  )
  return cases
}
