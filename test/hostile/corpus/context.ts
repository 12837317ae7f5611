/**
 * What every family of the hostile corpus is built from: the attacked issuer's public material (which any
 * attacker has) and, for cases that must be valid in every respect but one, its private key; the attacker's
 * own keys and server; and the shape of a case and of the answer it must get.
 */
import {
  constants,
  createHmac,
  createPublicKey,
  type KeyObject,
  KeyObject as KO,
  randomUUID,
  sign,
} from 'node:crypto'
import type { ErrorCode } from '../../../lib/errors.js'
import type { Attacker } from '../../helpers/attacker.js'
import { b64url, signingInput } from '../../helpers/jws.js'
import type { RawHeader } from '../../helpers/raw-http.js'
import type { TokenIssuer } from '../../helpers/token-issuer.js'

/** The families of the corpus, in report order. */
export const FAMILIES = ['alg', 'keys', 'claims', 'format', 'confusion', 'assertions'] as const
export type Family = (typeof FAMILIES)[number]

/** How deep a run goes: `fast` for `npm test`, `full` for `npm run test:hostile` (more variants). */
export type Depth = 'fast' | 'full'

/** The answer a case must get at every entry point it is sent to. */
export type Expectation =
  /** 401 with `error: invalid_token` and an RFC 6750 challenge naming it; `code` narrows the reason. */
  | { kind: 'invalid_token'; code?: ErrorCode | readonly ErrorCode[] }
  /** 400 with `error: invalid_request` and a challenge naming it. */
  | { kind: 'invalid_request'; code?: ErrorCode | readonly ErrorCode[] }
  /** No bearer credential was recognised: 401 KG_TOKEN_MISSING, a challenge without an error (RFC 6750 §3.1). */
  | { kind: 'missing' }
  /** Over a size cap: 401 KG_TOKEN_TOO_LARGE, or 431 from the HTTP parser for headers over its limit. */
  | { kind: 'too_large' }
  /** Bytes no HTTP parser may accept (NUL, bare line folding): Node's own 400, before any keygate code. */
  | { kind: 'bad_http' }
  /** A positive control: the request must succeed (2xx). */
  | { kind: 'accepted' }

export type EntryName = 'gateway' | 'profile' | 'orders' | 'files' | 'issuer'

/** 401 `invalid_token` for one of `codes` (any code when none is given). */
export const invalidToken = (...codes: ErrorCode[]): Expectation => ({
  kind: 'invalid_token',
  ...(codes.length ? { code: codes } : {}),
})
/** 400 `invalid_request` for one of `codes`. */
export const invalidRequest = (...codes: ErrorCode[]): Expectation => ({
  kind: 'invalid_request',
  ...(codes.length ? { code: codes } : {}),
})

export interface HostileCase {
  family: Family
  name: string
  /** Sent as `Authorization: Bearer <token>` (or as `x-keygate-assertion` in the assertions family). */
  token?: string
  /** Sent instead of the default header, byte for byte. */
  headers?: readonly RawHeader[]
  /** Appended to the route's path (`?access_token=…`). */
  query?: string
  expect: Expectation
  /** Entry points this case applies to (default: all). */
  only?: readonly EntryName[]
}

export interface IssuerMaterial {
  url: string
  audience: string
  kid: string
  privateKey: KeyObject
  publicKey: KeyObject
  publicJwk: Record<string, unknown>
}

/** What the families build cases from. */
export interface CorpusContext {
  issuer: IssuerMaterial
  attacker: Attacker
  depth: Depth
  /** Seconds since the epoch when the corpus was built. */
  now: number
  /** A fresh valid header: `{ alg: RS256, typ: at+jwt, kid }`. */
  header(overrides?: Record<string, unknown>): Record<string, unknown>
  /** Fresh valid claims (a new `jti` each time); `undefined` values remove a claim. */
  claims(overrides?: Record<string, unknown>): Record<string, unknown>
  /** Signs any header and payload (objects, or raw JSON text) with the issuer's key, RS256. */
  signed(header: unknown, payload: unknown): string
  /** Signs segments given as raw bytes (to send what is not UTF-8) with the issuer's key, RS256. */
  signedBytes(header: Buffer, payload: Buffer): string
  /** A token that is valid in every respect. */
  valid(): string
}

export function issuerMaterial(issuer: TokenIssuer): IssuerMaterial {
  const key = issuer.keys[0]!
  return {
    url: issuer.url,
    audience: issuer.audience,
    kid: key.kid,
    privateKey: KO.from(key.privateKey),
    publicKey: createPublicKey({ key: key.publicJwk as never, format: 'jwk' }),
    publicJwk: key.publicJwk as Record<string, unknown>,
  }
}

export function corpusContext(issuer: IssuerMaterial, attacker: Attacker, depth: Depth): CorpusContext {
  const now = Math.floor(Date.now() / 1000)
  const context: CorpusContext = {
    issuer,
    attacker,
    depth,
    now,
    header: (overrides = {}) =>
      withoutUndefined({ alg: 'RS256', typ: 'at+jwt', kid: issuer.kid, ...overrides }),
    claims: (overrides = {}) =>
      withoutUndefined({
        iss: issuer.url,
        sub: 'victim',
        aud: issuer.audience,
        iat: now,
        exp: now + 900,
        jti: randomUUID(),
        client_id: 'keygate-web',
        sid: 'session-hostile',
        roles: ['user'],
        scope: 'profile orders',
        ...overrides,
      }),
    signed: (header, payload) => signJws(header, payload, 'RS256', issuer.privateKey),
    signedBytes: (header, payload) => {
      const input = `${b64url(header)}.${b64url(payload)}`
      return `${input}.${b64url(signatureOf(input, 'RS256', issuer.privateKey))}`
    },
    valid: () => context.signed(context.header(), context.claims()),
  }
  return context
}

function withoutUndefined(record: Record<string, unknown>): Record<string, unknown> {
  for (const [k, v] of Object.entries(record)) if (v === undefined) delete record[k]
  return record
}

/** Signs `header.payload` with any algorithm node:crypto knows; `key` is a KeyObject or an HMAC secret. */
export function signJws(
  header: unknown,
  payload: unknown,
  alg: string,
  key: KeyObject | Buffer | string,
): string {
  const input = signingInput(header, payload)
  return `${input}.${b64url(signatureOf(input, alg, key))}`
}

export function signatureOf(input: string, alg: string, key: KeyObject | Buffer | string): Buffer {
  const hash = `sha${alg.slice(2)}`
  const data = Buffer.from(input)
  if (alg.startsWith('HS')) {
    const secret = typeof key === 'string' || Buffer.isBuffer(key) ? key : key.export()
    return createHmac(hash, secret).update(data).digest()
  }
  const keyObject = key as KeyObject
  if (alg.startsWith('PS')) {
    return sign(hash, data, {
      key: keyObject,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
    })
  }
  if (alg.startsWith('ES')) return sign(hash, data, { key: keyObject, dsaEncoding: 'ieee-p1363' })
  if (alg === 'EdDSA') return sign(null, data, keyObject)
  return sign(hash, data, keyObject)
}
