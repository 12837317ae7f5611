/**
 * Hand-built JWS for tests: any header, any payload, signed (or not) by any means — what an attacker can
 * produce, which libraries like jose refuse to.
 */
import { createHmac, type KeyObject, KeyObject as KO, sign } from 'node:crypto'

export const b64url = (data: string | Buffer) => Buffer.from(data).toString('base64url')

/** The JSON text of a value, or the value itself when it is already text (to test raw JSON quirks). */
const text = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v))

/** `header.payload` as a JWS signing input. */
export function signingInput(header: unknown, payload: unknown): string {
  return `${b64url(text(header))}.${b64url(text(payload))}`
}

/** RS256 (or another RSA PKCS#1 v1.5 digest) over any header and payload. */
export function signRsa(
  header: unknown,
  payload: unknown,
  key: KeyObject | CryptoKey,
  hash = 'sha256',
): string {
  const input = signingInput(header, payload)
  const keyObject = key instanceof KO ? key : KO.from(key)
  return `${input}.${b64url(sign(hash, Buffer.from(input), keyObject))}`
}

/** HS256 with any secret: the classic algorithm-confusion forgery. */
export function signHmac(header: unknown, payload: unknown, secret: string | Buffer): string {
  const input = signingInput(header, payload)
  return `${input}.${b64url(createHmac('sha256', secret).update(input).digest())}`
}

/** Ed25519 / ECDSA over any header and payload. */
export function signWith(header: unknown, payload: unknown, key: KeyObject, alg: 'EdDSA' | 'ES256'): string {
  const input = signingInput(header, payload)
  const signature =
    alg === 'EdDSA'
      ? sign(null, Buffer.from(input), key)
      : sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' })
  return `${input}.${b64url(signature)}`
}

/** An unsigned token: `alg` as given, empty or arbitrary signature. */
export function unsigned(header: unknown, payload: unknown, signature = ''): string {
  return `${signingInput(header, payload)}.${signature}`
}
