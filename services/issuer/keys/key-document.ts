/**
 * The key set as stored in `keyset.json`: every signing key with its state, its schedule and its private
 * JWK. This module only describes and checks the document; `lifecycle.ts` moves keys between states.
 */
import type { JWK } from 'jose'

/** `next`: published, not yet signing; `active`: signing; `retired`: published until its tokens expired;
 * `revoked`: withdrawn at once, listed until its tokens expired. */
export type KeyState = 'next' | 'active' | 'retired' | 'revoked'
export const KEY_STATES: readonly KeyState[] = ['next', 'active', 'retired', 'revoked']

/** The one algorithm issuer keys sign with. */
export const SIGNING_ALGORITHM = 'RS256'

/** One signing key. Times are milliseconds since the epoch. */
export interface StoredKey {
  /** RFC 7638 thumbprint of the public key. */
  kid: string
  state: KeyState
  /** When the key was generated, and published (the two are the same moment). */
  createdAt: number
  activatedAt?: number
  retiredAt?: number
  revokedAt?: number
  /** When a retired or revoked key leaves the set. */
  removeAt?: number
  /** The RSA private key (public parts included). */
  privateJwk: JWK
}

export interface KeySetDocument {
  version: 1
  keys: StoredKey[]
}

/** A set with no keys, before first start. */
export const EMPTY_KEY_SET: KeySetDocument = { version: 1, keys: [] }

/** The key in `state`, if any (a valid set has at most one `active` and one `next`). */
export function keyIn(doc: KeySetDocument, state: 'active' | 'next'): StoredKey | undefined {
  return doc.keys.find((k) => k.state === state)
}

/** Keys a verifier may hold: everything but revoked keys. */
export function publishedKeys(doc: KeySetDocument): StoredKey[] {
  return doc.keys.filter((k) => k.state !== 'revoked')
}

/** The public half of a key as served in the JWKS: `kty`, `n`, `e`, `kid`, `alg`, `use` only. */
export function publicJwk(key: StoredKey): JWK {
  return {
    kty: key.privateJwk.kty,
    n: key.privateJwk.n,
    e: key.privateJwk.e,
    kid: key.kid,
    alg: SIGNING_ALGORITHM,
    use: 'sig',
  }
}

/**
 * Checks a parsed `keyset.json`, so a hand-edited or truncated file fails loudly instead of leaving the
 * issuer with no signing key. `source` names the file in the message.
 */
export function parseKeySetDocument(value: unknown, source: string): KeySetDocument {
  const fail = (why: string): never => {
    throw new Error(`keygate: key set ${source} is invalid: ${why}`)
  }
  if (typeof value !== 'object' || value === null) return fail('not a JSON object')
  const doc = value as Partial<KeySetDocument>
  if (doc.version !== 1) return fail('unknown version')
  if (!Array.isArray(doc.keys)) return fail('no keys array')
  const kids = new Set<string>()
  for (const key of doc.keys as Partial<StoredKey>[]) {
    if (typeof key.kid !== 'string' || !key.kid) return fail('a key has no kid')
    if (kids.has(key.kid)) return fail(`kid ${key.kid} appears twice`)
    kids.add(key.kid)
    if (!KEY_STATES.includes(key.state as KeyState)) return fail(`key ${key.kid} has an unknown state`)
    if (typeof key.createdAt !== 'number') return fail(`key ${key.kid} has no createdAt`)
    const jwk = key.privateJwk
    if (!jwk || jwk.kty !== 'RSA' || typeof jwk.n !== 'string' || typeof jwk.d !== 'string') {
      return fail(`key ${key.kid} has no RSA private key`)
    }
  }
  for (const state of ['active', 'next'] as const) {
    if (doc.keys.filter((k) => k.state === state).length > 1) return fail(`more than one ${state} key`)
  }
  return doc as KeySetDocument
}
