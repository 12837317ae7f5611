/**
 * Claims and header members of tokens signed with the issuer's genuine key, wrong in exactly one way
 * (RFC 9068 §2.2 and §4, RFC 8725 §3.8–3.12, RFC 7515 §4.1.11, RFC 7797): issuer and audience mismatches,
 * time claims, missing required claims, every claim replaced by every JSON type, `typ` of other token kinds
 * (refresh, ID token, DPoP proof, keygate's own assertions and links), unknown `crit`, duplicate members and
 * payloads that are not JSON objects.
 */
import type { ErrorCode } from '../../../lib/errors.js'
import { b64url } from '../../helpers/jws.js'
import { type CorpusContext, type HostileCase, invalidRequest, invalidToken } from './context.js'

const isNonEmptyString = (v: unknown) => typeof v === 'string' && v.length > 0
const isTime = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v)

/** What the verifier must hold true of each claim, and the codes a violation may be reported with. */
interface ClaimRule {
  valid(value: unknown, ctx: CorpusContext): boolean
  codes: ErrorCode[]
}

const CLAIM_RULES: Record<string, ClaimRule> = {
  iss: { valid: (v, ctx) => v === ctx.issuer.url, codes: ['KG_TOKEN_ISSUER_UNKNOWN'] },
  sub: { valid: isNonEmptyString, codes: ['KG_TOKEN_CLAIM_INVALID'] },
  aud: {
    valid: (v, ctx) =>
      v === ctx.issuer.audience ||
      (Array.isArray(v) && v.every((a) => typeof a === 'string') && v.includes(ctx.issuer.audience)),
    codes: ['KG_TOKEN_CLAIM_INVALID', 'KG_TOKEN_AUDIENCE_INVALID'],
  },
  exp: {
    valid: (v, ctx) => isTime(v) && v > ctx.now + 60,
    codes: ['KG_TOKEN_CLAIM_INVALID', 'KG_TOKEN_EXPIRED'],
  },
  iat: {
    valid: (v, ctx) => isTime(v) && v <= ctx.now,
    codes: ['KG_TOKEN_CLAIM_INVALID', 'KG_TOKEN_NOT_YET_VALID'],
  },
  nbf: {
    valid: (v, ctx) => isTime(v) && v <= ctx.now,
    codes: ['KG_TOKEN_CLAIM_INVALID', 'KG_TOKEN_NOT_YET_VALID'],
  },
  jti: { valid: isNonEmptyString, codes: ['KG_TOKEN_CLAIM_INVALID'] },
  client_id: { valid: isNonEmptyString, codes: ['KG_TOKEN_CLAIM_INVALID'] },
  sid: { valid: isNonEmptyString, codes: ['KG_TOKEN_CLAIM_INVALID'] },
  roles: {
    valid: (v) => Array.isArray(v) && v.every((r) => typeof r === 'string'),
    codes: ['KG_TOKEN_CLAIM_INVALID'],
  },
  scope: { valid: (v) => typeof v === 'string', codes: ['KG_TOKEN_CLAIM_INVALID'] },
}

/** Every JSON type, and values of each type that lax checks let through (empty, zero, numeric text). */
const REPLACEMENTS: unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  1.5,
  '',
  'x',
  '1700000000',
  [],
  ['x'],
  [1],
  {},
  { a: 1 },
]

/** RFC 9068 §2.2: what an access token must carry. */
const REQUIRED_CLAIMS = ['iss', 'sub', 'aud', 'exp', 'iat', 'jti', 'client_id']

export function claimCases(ctx: CorpusContext): HostileCase[] {
  const cases: HostileCase[] = []
  const add = (name: string, token: string, expect = invalidToken()) =>
    cases.push({ family: 'claims', name, token, expect })
  const withClaims = (claims: Record<string, unknown>) => ctx.signed(ctx.header(), ctx.claims(claims))
  const iss = ctx.issuer.url
  const issUrl = new URL(iss)

  // Issuer: anything but the exact configured string is unknown (and never a URL to fetch from).
  const issuers: Array<[string, unknown]> = [
    ["the attacker's URL", ctx.attacker.url],
    ['upper-case scheme and host', iss.replace('http://', 'HTTP://')],
    ['a trailing slash', `${iss}/`],
    ['a path', `${iss}/tenant`],
    ['a fragment', `${iss}#`],
    ['surrounding whitespace', ` ${iss} `],
    ['https instead of http', iss.replace('http:', 'https:')],
    ['userinfo before the host', `http://admin@${issUrl.host}`],
    ['localhost for 127.0.0.1', iss.replace('127.0.0.1', 'localhost')],
    ['a list holding it', [iss]],
  ]
  for (const [what, value] of issuers)
    add(`iss: ${what}`, withClaims({ iss: value }), invalidToken('KG_TOKEN_ISSUER_UNKNOWN'))

  // Audience.
  const aud = ctx.issuer.audience
  const audiences: Array<[string, unknown]> = [
    ['another API', 'other-api'],
    ['a list without ours', ['other-api', 'another-api']],
    ['an empty list', []],
    ['ours upper-cased', aud.toUpperCase()],
    ['ours with a trailing space', `${aud} `],
    ['ours with a trailing slash', `${aud}/`],
    ['the client id (an ID token’s audience)', 'keygate-web'],
    ['the issuer URL', iss],
    ['ours inside an object', { aud }],
    ['ours as a number-keyed list', [1, 2]],
  ]
  for (const [what, value] of audiences) {
    add(
      `aud: ${what}`,
      withClaims({ aud: value }),
      invalidToken('KG_TOKEN_AUDIENCE_INVALID', 'KG_TOKEN_CLAIM_INVALID'),
    )
  }

  // Time claims.
  const expired = invalidToken('KG_TOKEN_EXPIRED')
  const early = invalidToken('KG_TOKEN_NOT_YET_VALID')
  add('exp an hour ago', withClaims({ exp: ctx.now - 3600 }), expired)
  add('exp just past the clock tolerance', withClaims({ exp: ctx.now - 31 }), expired)
  add('exp 0', withClaims({ exp: 0 }), expired)
  add(
    'exp a numeric string',
    withClaims({ exp: String(ctx.now + 900) }),
    invalidToken('KG_TOKEN_CLAIM_INVALID'),
  )
  add(
    'exp 1e309 (Infinity once parsed)',
    ctx.signed(ctx.header(), JSON.stringify(ctx.claims({ exp: 0 })).replace('"exp":0', '"exp":1e309')),
    invalidToken('KG_TOKEN_CLAIM_INVALID'),
  )
  add('nbf an hour ahead', withClaims({ nbf: ctx.now + 3600 }), early)
  add('iat an hour ahead', withClaims({ iat: ctx.now + 3600 }), early)
  add('iat and exp both far ahead', withClaims({ iat: ctx.now + 86_400, exp: ctx.now + 90_000 }), early)

  for (const claim of REQUIRED_CLAIMS) {
    const rule = CLAIM_RULES[claim]!
    add(`${claim} missing`, withClaims({ [claim]: undefined }), invalidToken(...rule.codes))
  }
  // Every claim replaced by every JSON type, wherever that breaks the claim's rule.
  for (const [claim, rule] of Object.entries(CLAIM_RULES)) {
    for (const value of REPLACEMENTS) {
      if (rule.valid(value, ctx)) continue
      add(`${claim}: ${JSON.stringify(value)}`, withClaims({ [claim]: value }), invalidToken(...rule.codes))
    }
  }

  // typ of other kinds of token (RFC 8725 §3.11 explicit typing; RFC 9068 §4).
  const types: unknown[] = [
    'JWT',
    'jwt',
    'rt+jwt',
    'refresh_token',
    'id_token',
    'dpop+jwt',
    'kg-assertion+jwt',
    'kg-download+jwt',
    'logout+jwt',
    'secevent+jwt',
    'application/jwt',
    'at+jwt; charset=utf-8',
    ' at+jwt',
    'at+jwt\u0000',
    'at-jwt',
    'at+jws',
    'application/at+jwt+x',
    null,
    1,
    ['at+jwt'],
  ]
  const wrongType = invalidToken('KG_TOKEN_TYPE_INVALID')
  for (const typ of types)
    add(`typ ${JSON.stringify(typ)}`, ctx.signed(ctx.header({ typ }), ctx.claims()), wrongType)
  add('typ missing', ctx.signed(ctx.header({ typ: undefined }), ctx.claims()), wrongType)
  add(
    'an ID token (typ JWT, aud the client, nonce, auth_time)',
    ctx.signed(
      ctx.header({ typ: 'JWT' }),
      ctx.claims({ aud: 'keygate-web', nonce: 'n-0S6_WzA2Mj', auth_time: ctx.now }),
    ),
    invalidToken('KG_TOKEN_TYPE_INVALID', 'KG_TOKEN_AUDIENCE_INVALID'),
  )
  add(
    'a DPoP proof shape (typ dpop+jwt, htm, htu)',
    ctx.signed(ctx.header({ typ: 'dpop+jwt' }), {
      jti: 'dpop-1',
      htm: 'GET',
      htu: `${iss}/me`,
      iat: ctx.now,
    }),
    invalidToken('KG_TOKEN_TYPE_INVALID', 'KG_TOKEN_ISSUER_UNKNOWN'),
  )

  // crit: nothing is understood, so any crit is refused (RFC 7515 §4.1.11).
  const crits: Array<[string, Record<string, unknown>]> = [
    ['["exp"]', { crit: ['exp'] }],
    ['["b64"] with b64 false', { crit: ['b64'], b64: false }],
    ['["foo"] with foo', { crit: ['foo'], foo: 1 }],
    ['[] (empty, itself invalid)', { crit: [] }],
    ['"b64" (not a list)', { crit: 'b64' }],
    ['[""]', { crit: [''] }],
    ['["alg"]', { crit: ['alg'] }],
  ]
  for (const [what, extra] of crits) {
    add(
      `crit ${what}`,
      ctx.signed(ctx.header(extra), ctx.claims()),
      invalidToken('KG_TOKEN_CRIT_UNSUPPORTED'),
    )
  }
  // RFC 7797 unencoded payload: the payload travels raw (not token68) or detached (an empty segment).
  const rawPayload = JSON.stringify(ctx.claims({ sub: 'admin' }))
  const b64Header = b64url(JSON.stringify(ctx.header({ b64: false, crit: ['b64'] })))
  cases.push({
    family: 'claims',
    name: 'b64 false, raw payload in the token',
    token: `${b64Header}.${rawPayload}.AAAA`,
    expect: invalidRequest('KG_INVALID_REQUEST'),
  })
  add('b64 false, detached payload', `${b64Header}..AAAA`, invalidToken('KG_TOKEN_MALFORMED'))

  // Duplicate members: JSON.parse keeps the last, another parser the first; both must be refused.
  const kid = ctx.issuer.kid
  const dup = invalidToken('KG_TOKEN_MALFORMED')
  const claimsJson = JSON.stringify(ctx.claims()).slice(1, -1)
  add(
    'header: alg twice (none, then RS256)',
    ctx.signed(`{"alg":"none","alg":"RS256","typ":"at+jwt","kid":"${kid}"}`, ctx.claims()),
    dup,
  )
  add(
    'header: alg twice, one spelled with an escape',
    ctx.signed(`{"alg":"RS256","\\u0061lg":"none","typ":"at+jwt","kid":"${kid}"}`, ctx.claims()),
    dup,
  )
  add(
    'header: kid twice',
    ctx.signed(`{"alg":"RS256","typ":"at+jwt","kid":"attacker","kid":"${kid}"}`, ctx.claims()),
    dup,
  )
  add(
    'payload: sub twice (admin, then the victim)',
    ctx.signed(ctx.header(), `{"sub":"admin",${claimsJson}}`),
    dup,
  )
  add('payload: exp twice', ctx.signed(ctx.header(), `{"exp":${ctx.now - 3600},${claimsJson}}`), dup)
  add('payload: iss twice', ctx.signed(ctx.header(), `{"iss":"${ctx.attacker.url}",${claimsJson}}`), dup)
  add(
    'payload: a nested object with a key twice',
    ctx.signed(ctx.header(), `{${claimsJson},"ext":{"a":1,"a":2}}`),
    dup,
  )

  // Payloads and headers that are not JSON objects.
  const notObject = invalidToken('KG_TOKEN_MALFORMED')
  const payloads: Array<[string, string]> = [
    ['a JSON array', `[${JSON.stringify(ctx.claims())}]`],
    ['null', 'null'],
    ['a string', '"admin"'],
    ['a number', '123'],
    ['true', 'true'],
    ['with a byte order mark', `\ufeff${JSON.stringify(ctx.claims())}`],
    ['with trailing garbage', `${JSON.stringify(ctx.claims())} x`],
    ['with a comment', `/* x */${JSON.stringify(ctx.claims())}`],
    ['with single quotes', JSON.stringify(ctx.claims()).replaceAll('"', "'")],
    ['a nested JWS (cty JWT)', JSON.stringify(ctx.valid())],
    ['empty', ''],
  ]
  for (const [what, payload] of payloads) add(`payload ${what}`, ctx.signed(ctx.header(), payload), notObject)
  add('header a JSON array', ctx.signed(JSON.stringify([ctx.header()]), ctx.claims()), notObject)
  const json = (value: unknown) => Buffer.from(JSON.stringify(value))
  const notUtf8 = Buffer.from('{"sub":"\xc3\x28"}', 'latin1') // a lead byte followed by no continuation
  add(
    'header not UTF-8',
    ctx.signedBytes(Buffer.from('{"alg":"RS256","x":"\xff"}', 'latin1'), json(ctx.claims())),
    notObject,
  )
  add('payload not UTF-8', ctx.signedBytes(json(ctx.header()), notUtf8), notObject)
  return cases
}
