/**
 * Tokens that verified, remembered so the RSA cost is paid once per token per process. Bounded (LRU), an
 * entry never outlives its token's `exp`, and every entry made with a key is dropped when that key leaves
 * the key set or is revoked. A verifier owns one cache, so the key is the token alone: the validation
 * context (issuer set, audiences, types) is the verifier's own and fixed.
 */
import { LRUCache } from 'lru-cache'
import type { Identity } from './types.js'

/** Default number of verified tokens remembered per verifier. */
export const DEFAULT_VERIFIED_CACHE_SIZE = 10_000

interface Entry {
  readonly identity: Identity
  /** The key that verified the token's signature. */
  readonly kid: string
  /** `exp` plus the issuer's clock tolerance, in seconds: the entry is dead from then on. */
  readonly validUntilS: number
}

export class VerifiedTokenCache {
  readonly #entries: LRUCache<string, Entry>
  /** Tokens per signing key, so a removed key drops its entries without scanning the cache. */
  readonly #byKid = new Map<string, Set<string>>()

  constructor(maxEntries = DEFAULT_VERIFIED_CACHE_SIZE) {
    this.#entries = new LRUCache<string, Entry>({
      max: maxEntries,
      dispose: (entry, token) => {
        const tokens = this.#byKid.get(entry.kid)
        tokens?.delete(token)
        if (tokens?.size === 0) this.#byKid.delete(entry.kid)
      },
    })
  }

  get size(): number {
    return this.#entries.size
  }

  /** The identity a token verified to, if remembered and not past `exp` (+ tolerance) at `nowS`. */
  get(token: string, nowS: number): Identity | undefined {
    const entry = this.#entries.get(token)
    if (entry === undefined) return undefined
    if (nowS >= entry.validUntilS) {
      this.#entries.delete(token)
      return undefined
    }
    return entry.identity
  }

  /** Remembers a verified token; `kid` is the key that verified it, `validUntilS` its `exp` + tolerance. */
  set(token: string, identity: Identity, kid: string, validUntilS: number): void {
    this.#entries.set(token, { identity, kid, validUntilS })
    let tokens = this.#byKid.get(kid)
    if (!tokens) this.#byKid.set(kid, (tokens = new Set()))
    tokens.add(token)
  }

  /** Drops every entry verified with one of `kids`. */
  dropKeys(kids: Iterable<string>): void {
    for (const kid of kids) {
      for (const token of [...(this.#byKid.get(kid) ?? [])]) this.#entries.delete(token)
      this.#byKid.delete(kid)
    }
  }

  /** Drops every entry matching `predicate` (a revocation arrived). */
  dropWhere(predicate: (identity: Identity) => boolean): void {
    for (const [token, entry] of this.#entries.entries()) {
      if (predicate(entry.identity)) this.#entries.delete(token)
    }
  }

  clear(): void {
    this.#entries.clear()
  }
}
