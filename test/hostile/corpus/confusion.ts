/**
 * Cross-token confusion (RFC 8725 §2.8 and §3.11, RFC 9068 §4): keygate signs three kinds of JWT — the
 * issuer's access tokens, the gateway's identity assertions and files' one-time download links — and none may
 * pass for another; a genuine access token minted for another audience is replayed; opaque session values are
 * presented as bearer tokens. Then the assertion header itself, at each service, with every forgery the `alg`
 * and claims families apply to access tokens (the gateway ignores that header from clients altogether).
 */
import { generateKeyPairSync, type KeyObject, randomBytes, randomUUID } from 'node:crypto'
import { ASSERTION_TYPE } from '../../../lib/identity/constants.js'
import { b64url, signingInput } from '../../helpers/jws.js'
import { type CorpusContext, type EntryName, type HostileCase, invalidToken, signJws } from './context.js'

/** Genuine tokens of the other kinds, taken from the running components. */
export interface ConfusionMaterial {
  /** An assertion the gateway attached to a proxied request (audience `echo`). */
  assertion: string
  /** A one-time download link token issued by files. */
  downloadToken: string
  /** An access token the issuer signed for another audience. */
  otherAudience: string
  /** The gateway's assertion key. */
  gatewayKey: { issuer: string; kid: string; privateKey: KeyObject; publicKey: KeyObject }
}

export function confusionCases(ctx: CorpusContext, m: ConfusionMaterial): HostileCase[] {
  const cases: HostileCase[] = []
  const add = (name: string, token: string, expect = invalidToken()) =>
    cases.push({ family: 'confusion', name, token, expect })
  const g = m.gatewayKey
  add('a gateway assertion as an access token', m.assertion, invalidToken('KG_TOKEN_ISSUER_UNKNOWN'))
  add(
    'a gateway-signed token typed at+jwt with the gateway as iss',
    signJws(
      { alg: 'EdDSA', typ: 'at+jwt', kid: g.kid },
      ctx.claims({ iss: g.issuer }),
      'EdDSA',
      g.privateKey,
    ),
    invalidToken('KG_TOKEN_ISSUER_UNKNOWN'),
  )
  add(
    "a gateway-signed token claiming the issuer's iss",
    signJws({ alg: 'EdDSA', typ: 'at+jwt', kid: g.kid }, ctx.claims(), 'EdDSA', g.privateKey),
    invalidToken('KG_TOKEN_ALG_NOT_ALLOWED'),
  )
  add(
    'a one-time download link token as an access token',
    m.downloadToken,
    invalidToken('KG_TOKEN_ISSUER_UNKNOWN'),
  )
  add(
    'a genuine access token for another audience',
    m.otherAudience,
    invalidToken('KG_TOKEN_AUDIENCE_INVALID'),
  )
  add(
    'an opaque refresh-token-like value',
    randomBytes(32).toString('base64url'),
    invalidToken('KG_TOKEN_MALFORMED'),
  )
  add('a UUID session id', randomUUID(), invalidToken('KG_TOKEN_MALFORMED'))
  cases.push({
    family: 'confusion',
    name: 'a gateway assertion sent to the gateway in its own header',
    headers: [['x-keygate-assertion', m.assertion]],
    expect: { kind: 'missing' },
    only: ['gateway'],
  })
  return cases
}

const SERVICES = ['profile', 'orders', 'files'] as const

/**
 * Forged or misdirected assertions in `x-keygate-assertion`, sent to each service directly (the runner puts
 * the token in that header for this family).
 */
export function assertionCases(ctx: CorpusContext, m: ConfusionMaterial): HostileCase[] {
  const cases: HostileCase[] = []
  const g = m.gatewayKey
  const header = (overrides: Record<string, unknown> = {}) => ({
    alg: 'EdDSA',
    typ: ASSERTION_TYPE,
    kid: g.kid,
    ...overrides,
  })
  const claims = (audience: string, overrides: Record<string, unknown> = {}) => {
    const all: Record<string, unknown> = {
      iss: g.issuer,
      aud: audience,
      sub: 'victim',
      iat: ctx.now,
      exp: ctx.now + 60,
      jti: randomUUID(),
      roles: ['admin'],
      scope: 'profile orders',
      at_jti: randomUUID(),
      at_iat: ctx.now,
      at_iss: ctx.issuer.url,
      at_kid: ctx.issuer.kid,
      ...overrides,
    }
    for (const [k, v] of Object.entries(all)) if (v === undefined) delete all[k]
    return all
  }
  const asGateway = (h: Record<string, unknown>, c: Record<string, unknown>) =>
    signJws(h, c, 'EdDSA', g.privateKey)
  const spki = g.publicKey.export({ type: 'spki', format: 'pem' }) as string
  const x = (g.publicKey.export({ format: 'jwk' }) as { x: string }).x
  const stranger = generateKeyPairSync('ed25519')

  for (const service of SERVICES) {
    const other = SERVICES.find((s) => s !== service)!
    const only: EntryName[] = [service]
    const add = (name: string, token: string, expect = invalidToken()) =>
      cases.push({ family: 'assertions', name: `${name} (at ${service})`, token, expect, only })
    add(
      `an assertion minted for ${other}`,
      asGateway(header(), claims(other)),
      invalidToken('KG_TOKEN_AUDIENCE_INVALID'),
    )
    add('an assertion for the echo upstream', m.assertion, invalidToken('KG_TOKEN_AUDIENCE_INVALID'))
    add(
      'an expired assertion',
      asGateway(header(), claims(service, { iat: ctx.now - 600, exp: ctx.now - 300 })),
      invalidToken('KG_TOKEN_EXPIRED'),
    )
    add(
      'an assertion issued in the future',
      asGateway(header(), claims(service, { iat: ctx.now + 3600 })),
      invalidToken('KG_TOKEN_NOT_YET_VALID'),
    )
    for (const missing of ['at_jti', 'at_iat', 'at_iss', 'at_kid', 'sub', 'jti', 'exp']) {
      add(
        `an assertion without ${missing}`,
        asGateway(header(), claims(service, { [missing]: undefined })),
        invalidToken('KG_TOKEN_CLAIM_INVALID'),
      )
    }
    add(
      'an assertion with at_iat a string',
      asGateway(header(), claims(service, { at_iat: String(ctx.now) })),
      invalidToken('KG_TOKEN_CLAIM_INVALID'),
    )
    add(
      'an assertion typed as an access token',
      asGateway(header({ typ: 'at+jwt' }), claims(service)),
      invalidToken('KG_TOKEN_TYPE_INVALID'),
    )
    add(
      'an assertion without typ',
      asGateway(header({ typ: undefined }), claims(service)),
      invalidToken('KG_TOKEN_TYPE_INVALID'),
    )
    add(
      "an assertion naming the attacker's server as iss",
      asGateway(header(), claims(service, { iss: ctx.attacker.url })),
      invalidToken('KG_TOKEN_ISSUER_UNKNOWN'),
    )
    add(
      'an assertion with alg none',
      `${signingInput(header({ alg: 'none' }), claims(service))}.`,
      invalidToken('KG_TOKEN_MALFORMED', 'KG_TOKEN_ALG_NOT_ALLOWED'),
    )
    add(
      'an assertion with alg none and a junk signature',
      `${signingInput(header({ alg: 'none' }), claims(service))}.AAAA`,
      invalidToken('KG_TOKEN_ALG_NOT_ALLOWED'),
    )
    for (const [form, secret] of [
      ['SPKI PEM', spki],
      ['raw x bytes', Buffer.from(x, 'base64url')],
      ['x as base64url text', x],
      ['JWK JSON', JSON.stringify({ kty: 'OKP', crv: 'Ed25519', x, kid: g.kid })],
    ] as Array<[string, string | Buffer]>) {
      add(
        `an HS256 assertion keyed with the gateway's public key as ${form}`,
        signJws(header({ alg: 'HS256' }), claims(service), 'HS256', secret),
        invalidToken('KG_TOKEN_ALG_NOT_ALLOWED'),
      )
    }
    add(
      'an assertion with an all-zero EdDSA signature',
      `${signingInput(header(), claims(service))}.${b64url(Buffer.alloc(64))}`,
      invalidToken('KG_TOKEN_SIGNATURE_INVALID'),
    )
    add(
      "an assertion signed by another Ed25519 key under the gateway's kid",
      signJws(header(), claims(service), 'EdDSA', stranger.privateKey),
      invalidToken('KG_TOKEN_SIGNATURE_INVALID'),
    )
    add(
      'an assertion embedding its own jwk',
      signJws(
        header({ jwk: stranger.publicKey.export({ format: 'jwk' }) }),
        claims(service),
        'EdDSA',
        stranger.privateKey,
      ),
      invalidToken('KG_TOKEN_MALFORMED'),
    )
    add(
      'an assertion with an unknown kid',
      signJws(header({ kid: 'gateway-2' }), claims(service), 'EdDSA', stranger.privateKey),
      invalidToken('KG_TOKEN_KEY_UNKNOWN'),
    )
    add('an access token in the assertion header', ctx.valid(), invalidToken('KG_TOKEN_ISSUER_UNKNOWN'))
    add(
      'a download link token in the assertion header',
      m.downloadToken,
      invalidToken('KG_TOKEN_ISSUER_UNKNOWN'),
    )
    cases.push({
      family: 'assertions',
      name: `a genuine assertion about another access token, beside a valid one (at ${service})`,
      headers: [
        ['authorization', `Bearer ${ctx.valid()}`],
        ['x-keygate-assertion', asGateway(header(), claims(service))],
      ],
      expect: invalidToken('KG_ASSERTION_INVALID'),
      only,
    })
  }
  return cases
}
