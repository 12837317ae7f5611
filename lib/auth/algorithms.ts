/**
 * The JWS algorithms a verifier can be configured to allow, what key each needs, and the synchronous
 * `node:crypto.verify` call for each. A key is bound to exactly one algorithm when it is imported; the
 * token's `alg` must equal it (RFC 8725 §3.1), so no token can make an RSA key act as an HMAC secret.
 */
import { type KeyObject, constants, verify } from 'node:crypto'

interface AlgorithmSpec {
  readonly kty: 'RSA' | 'EC' | 'OKP'
  /** Digest for node:crypto.verify; `null` for EdDSA, which hashes internally. */
  readonly hash: string | null
  readonly crv?: string
  readonly pss?: boolean
  /** Exact length of an ECDSA signature (r‖s, RFC 7518 §3.4); anything else is refused unread. */
  readonly signatureBytes?: number
}

/** Asymmetric algorithms only: HMAC and `none` are never verifiable here, whatever configuration says. */
export const ALGORITHMS: Readonly<Record<string, AlgorithmSpec>> = {
  RS256: { kty: 'RSA', hash: 'sha256' },
  RS384: { kty: 'RSA', hash: 'sha384' },
  RS512: { kty: 'RSA', hash: 'sha512' },
  PS256: { kty: 'RSA', hash: 'sha256', pss: true },
  PS384: { kty: 'RSA', hash: 'sha384', pss: true },
  PS512: { kty: 'RSA', hash: 'sha512', pss: true },
  ES256: { kty: 'EC', hash: 'sha256', crv: 'P-256', signatureBytes: 64 },
  ES384: { kty: 'EC', hash: 'sha384', crv: 'P-384', signatureBytes: 96 },
  ES512: { kty: 'EC', hash: 'sha512', crv: 'P-521', signatureBytes: 132 },
  EdDSA: { kty: 'OKP', hash: null, crv: 'Ed25519' },
}

/** Smallest RSA modulus accepted in a JWKS, in bits (RFC 7518 §3.3). */
export const MIN_RSA_BITS = 2048

export function isSupportedAlgorithm(alg: string): boolean {
  return Object.hasOwn(ALGORITHMS, alg)
}

/** The algorithm spec, or undefined for anything unsupported (including `none` and HS*). */
export function algorithmSpec(alg: string): AlgorithmSpec | undefined {
  return Object.hasOwn(ALGORITHMS, alg) ? ALGORITHMS[alg] : undefined
}

/** Verifies a JWS signature synchronously. `alg` must already be known to match `key`. */
export function verifySignature(
  alg: string,
  key: KeyObject,
  signingInput: string,
  signature: Buffer,
): boolean {
  const spec = algorithmSpec(alg)
  if (!spec) return false
  if (spec.signatureBytes !== undefined && signature.length !== spec.signatureBytes) return false
  const data = Buffer.from(signingInput, 'latin1')
  if (spec.kty === 'EC') return verify(spec.hash, data, { key, dsaEncoding: 'ieee-p1363' }, signature)
  if (spec.pss) {
    return verify(
      spec.hash,
      data,
      { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST },
      signature,
    )
  }
  return verify(spec.hash, data, key, signature)
}
