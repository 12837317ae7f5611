/**
 * Tokens that verified, remembered so the RSA cost is paid once per token per process. Bounded (LRU), an
 * entry never outlives its token's `exp`, and every entry made with a key is dropped when that key leaves
 * the key set or is revoked (a scan of the cache: keys leave rarely, tokens arrive on every request, so no
 * per-key index is kept up to date on the way in). A verifier owns one cache, so the key is the token alone: the validation
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

  constructor(maxEntries = DEFAULT_VERIFIED_CACHE_SIZE) {
    this.#entries = new LRUCache<string, Entry>({ max: maxEntries })
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
  }

  /** Drops every entry verified with one of `kids`. */
  dropKeys(kids: Iterable<string>): void {
    const removed = new Set(kids)
    if (removed.size === 0) return
    const doomed: string[] = []
    for (const [token, entry] of this.#entries.entries()) if (removed.has(entry.kid)) doomed.push(token)
    for (const token of doomed) this.#entries.delete(token)
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
