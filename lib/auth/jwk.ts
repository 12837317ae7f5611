/**
 * Importing one JWK from a JWKS as a verification key: public members only, bound to one algorithm, refused
 * when it cannot be used for verification with an allowed algorithm.
 */
import { createHash, createPublicKey } from 'node:crypto'
import { algorithmSpec, MIN_RSA_BITS } from './algorithms.js'
import type { VerificationKey } from './types.js'

/** Longest `kid` accepted, in characters. A `kid` is only ever an exact map lookup. */
export const MAX_KID_LENGTH = 256

const PUBLIC_MEMBERS = {
  RSA: ['kty', 'n', 'e'],
  EC: ['kty', 'crv', 'x', 'y'],
  OKP: ['kty', 'crv', 'x'],
} as const

/** The algorithm a JWK is bound to: its own `alg`, or the single allowed algorithm that fits its type. */
function bindAlgorithm(jwk: Record<string, unknown>, allowed: readonly string[]): string | undefined {
  if (jwk.alg !== undefined) {
    return typeof jwk.alg === 'string' && allowed.includes(jwk.alg) ? jwk.alg : undefined
  }
  const fitting = allowed.filter((alg) => {
    const spec = algorithmSpec(alg)
    return spec !== undefined && spec.kty === jwk.kty && (spec.crv === undefined || spec.crv === jwk.crv)
  })
  return fitting.length === 1 ? fitting[0] : undefined
}

/**
 * Imports a JWK for verification with one of `allowed`, or returns the reason it cannot be used.
 * @example
 * const key = importVerificationKey(jwk, ['RS256'])
 * if (typeof key === 'string') log.warn({ reason: key }, 'JWK skipped')
 */
export function importVerificationKey(jwk: unknown, allowed: readonly string[]): VerificationKey | string {
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) return 'not an object'
  const k = jwk as Record<string, unknown>
  // No kid at all is allowed (RFC 7517 §4.5 makes it optional): the key set decides whether such a key is
  // the only candidate for its algorithm (jwks-cache.ts). A kid that is there must be usable.
  if (
    k.kid !== undefined &&
    (typeof k.kid !== 'string' || k.kid.length === 0 || k.kid.length > MAX_KID_LENGTH)
  ) {
    return 'no usable kid'
  }
  if (k.use !== undefined && k.use !== 'sig') return 'not a signing key'
  if (k.key_ops !== undefined && !(Array.isArray(k.key_ops) && k.key_ops.includes('verify'))) {
    return 'key_ops excludes verify'
  }
  const alg = bindAlgorithm(k, allowed)
  const spec = alg === undefined ? undefined : algorithmSpec(alg)
  if (alg === undefined || !spec) return 'algorithm not allowed or ambiguous'
  if (spec.kty !== k.kty || (spec.crv !== undefined && spec.crv !== k.crv)) return 'key type does not fit alg'
  const members = PUBLIC_MEMBERS[spec.kty]
  const publicJwk = Object.fromEntries(members.map((m) => [m, k[m]]))
  if (members.some((m) => typeof publicJwk[m] !== 'string')) return 'missing key members'
  try {
    const key = createPublicKey({ key: publicJwk, format: 'jwk' })
    if (spec.kty === 'RSA' && (key.asymmetricKeyDetails?.modulusLength ?? 0) < MIN_RSA_BITS) {
      return 'RSA key too short'
    }
    if (typeof k.kid === 'string') return { kid: k.kid, alg, key }
    return { kid: unnamedKeyLabel(publicJwk, members), alg, key, unnamed: true }
  } catch {
    return 'invalid key material'
  }
}

/**
 * The label of a key published without `kid`: its RFC 7638 thumbprint, marked so that it reads as no kid.
 * It names the key in logs, readiness detail and the verified-token cache; it is never looked up by a token.
 */
function unnamedKeyLabel(publicJwk: Record<string, unknown>, members: readonly string[]): string {
  const canonical = JSON.stringify(Object.fromEntries([...members].sort().map((m) => [m, publicJwk[m]])))
  return `(no kid) ${createHash('sha256').update(canonical).digest('base64url')}`
}
