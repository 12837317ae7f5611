/**
 * The key set of one remote issuer, held in memory. It is fetched at start (readiness waits for it),
 * refreshed in the background within the bounds of the response's Cache-Control, refetched for an unknown
 * `kid` at most once per cooldown (one fetch shared by every request waiting on it), and served stale while
 * the issuer is unreachable up to a maximum staleness. Fetches time out, never follow redirects and refuse
 * oversized bodies. Nothing in a token ever chooses the URL: it comes from configuration only.
 */
import { type Dispatcher, request } from 'undici'
import { readCappedBody } from './capped-body.js'
import { importVerificationKey } from './jwk.js'
import type { KeySourceStatus } from './metrics.js'
import type { KeySource, VerificationKey } from './types.js'

/** Shortest cache lifetime honoured from `Cache-Control: max-age`, in milliseconds. */
export const DEFAULT_JWKS_MIN_TTL_MS = 30_000
/** Longest cache lifetime honoured from `Cache-Control: max-age`, in milliseconds. */
export const DEFAULT_JWKS_MAX_TTL_MS = 3_600_000
/** Cache lifetime when the response has no max-age, in milliseconds. */
export const DEFAULT_JWKS_TTL_MS = 300_000
/** Least time between two refetches caused by unknown `kid`s, in milliseconds. */
export const DEFAULT_JWKS_COOLDOWN_MS = 30_000
/** How long past its cache lifetime a key set may still be used while the issuer is unreachable, in ms. */
export const DEFAULT_JWKS_MAX_STALE_MS = 6 * 3_600_000
/** Time limit of one fetch (connect, headers and body), in milliseconds. */
export const DEFAULT_JWKS_TIMEOUT_MS = 5_000
/** Largest JWKS body accepted, in bytes. */
export const DEFAULT_JWKS_MAX_BYTES = 256 * 1024
/** First retry delay after a failed background fetch, in milliseconds (doubles up to the cooldown). */
const FIRST_RETRY_MS = 1_000

/** A key of a JWKS that cannot be used (a bad kid, no kid beside another key for its alg, too short, …). */
export interface RefusedKey {
  readonly kid: string
  readonly reason: string
}

export interface JwksCacheOptions {
  issuer: string
  /** The JWKS URL; when absent it is read from the issuer's `/.well-known/openid-configuration`. */
  jwksUri?: string
  /** Algorithms keys may be bound to. */
  algorithms: readonly string[]
  minTtlMs?: number
  maxTtlMs?: number
  defaultTtlMs?: number
  cooldownMs?: number
  maxStaleMs?: number
  timeoutMs?: number
  maxBytes?: number
  now?: () => number
  dispatcher?: Dispatcher
  /** Told about every fetch (outcome `ok` or `error`) and every unknown `kid`. */
  onFetch?: (outcome: 'ok' | 'error', error?: Error) => void
  onUnknownKid?: () => void
  onKeySkipped?: (kid: unknown, reason: string) => void
}

/** Reads `max-age` from a Cache-Control header (`no-cache`/`no-store` count as 0). */
export function maxAgeMs(cacheControl: string | string[] | undefined): number | undefined {
  const value = Array.isArray(cacheControl) ? cacheControl.join(',') : cacheControl
  if (!value) return undefined
  if (/(?:^|,)\s*no-(?:cache|store)\b/i.test(value)) return 0
  const m = /(?:^|,)\s*max-age\s*=\s*"?(\d{1,10})"?/i.exec(value)
  return m ? Number(m[1]) * 1000 : undefined
}

export class JwksCache implements KeySource, KeySourceStatus {
  readonly issuer: string
  readonly #options: Required<Omit<JwksCacheOptions, 'jwksUri' | 'dispatcher' | 'onFetch' | 'onUnknownKid'>> &
    Pick<JwksCacheOptions, 'dispatcher' | 'onFetch' | 'onUnknownKid'>
  #jwksUri: string | undefined
  #keys = new Map<string, VerificationKey>()
  /** Labels of the keys held without kid (each the sole key for its algorithm). */
  #unnamed: string[] = []
  /** Per algorithm, the one key held for it (algorithms with several keys are absent). */
  #soleKeys = new Map<string, VerificationKey>()
  #loaded = false
  /** The keys the last installed set held and could not be used, with the reason (metrics, readiness detail). */
  #refused: readonly RefusedKey[] = []
  #fetchedAt = 0
  #expiresAt = 0
  #lastUnknownKidFetch = Number.NEGATIVE_INFINITY
  #inflight: Promise<void> | undefined
  #timer: NodeJS.Timeout | undefined
  #retryMs = FIRST_RETRY_MS
  #closed = false
  #readyResolve!: () => void
  readonly #ready = new Promise<void>((resolve) => (this.#readyResolve = resolve))
  readonly #removedListeners: Array<(kids: string[]) => void> = []

  constructor(options: JwksCacheOptions) {
    this.issuer = options.issuer
    this.#jwksUri = options.jwksUri
    this.#options = {
      issuer: options.issuer,
      algorithms: options.algorithms,
      minTtlMs: options.minTtlMs ?? DEFAULT_JWKS_MIN_TTL_MS,
      maxTtlMs: options.maxTtlMs ?? DEFAULT_JWKS_MAX_TTL_MS,
      defaultTtlMs: options.defaultTtlMs ?? DEFAULT_JWKS_TTL_MS,
      cooldownMs: options.cooldownMs ?? DEFAULT_JWKS_COOLDOWN_MS,
      maxStaleMs: options.maxStaleMs ?? DEFAULT_JWKS_MAX_STALE_MS,
      timeoutMs: options.timeoutMs ?? DEFAULT_JWKS_TIMEOUT_MS,
      maxBytes: options.maxBytes ?? DEFAULT_JWKS_MAX_BYTES,
      now: options.now ?? Date.now,
      dispatcher: options.dispatcher,
      onFetch: options.onFetch,
      onUnknownKid: options.onUnknownKid,
      onKeySkipped: options.onKeySkipped ?? (() => {}),
    }
  }

  /** Starts the first fetch and the background refresh loop. */
  start(): void {
    void this.refresh()
  }

  ready(): Promise<void> {
    return this.#ready
  }

  usable(): boolean {
    return this.#loaded && this.#options.now() <= this.#expiresAt + this.#options.maxStaleMs
  }

  /** The keys of the current set that could not be used, and why. */
  refusedKeys(): readonly RefusedKey[] {
    return this.#refused
  }

  ageSeconds(): number {
    return this.#loaded ? Math.max(0, (this.#options.now() - this.#fetchedAt) / 1000) : -1
  }

  servingStale(): boolean {
    return this.#loaded && this.#options.now() > this.#expiresAt
  }

  onKeysRemoved(listener: (kids: string[]) => void): void {
    this.#removedListeners.push(listener)
  }

  /** Kids currently held (for tests and the admin view). */
  kids(): string[] {
    return [...this.#keys.keys()]
  }

  getKey(kid: string): VerificationKey | undefined | Promise<VerificationKey | undefined> {
    const key = this.#keys.get(kid)
    if (key) return key
    if (this.#inflight) return this.#inflight.then(() => this.#keys.get(kid))
    // Cold (never loaded): the background loop is already retrying with backoff; requests must not add to it.
    if (!this.#loaded) return undefined
    const now = this.#options.now()
    if (now - this.#lastUnknownKidFetch < this.#options.cooldownMs) {
      this.#options.onUnknownKid?.()
      return undefined
    }
    this.#lastUnknownKidFetch = now
    this.#options.onUnknownKid?.()
    return this.refresh().then(() => this.#keys.get(kid))
  }

  /**
   * The one key held for `alg`, for a token without kid: never a refetch (nothing names a key to look for),
   * and nothing when several keys fit, which are never tried in turn.
   */
  soleKey(alg: string): VerificationKey | undefined {
    return this.#soleKeys.get(alg)
  }

  /** Fetches the key set now, or joins the fetch already in flight. Never rejects. */
  refresh(): Promise<void> {
    this.#inflight ??= this.#fetch().finally(() => (this.#inflight = undefined))
    return this.#inflight
  }

  async close(): Promise<void> {
    this.#closed = true
    clearTimeout(this.#timer)
    await this.#inflight
  }

  async #fetch(): Promise<void> {
    clearTimeout(this.#timer)
    let delay: number
    try {
      this.#jwksUri ??= await this.#discoverJwksUri()
      const { body, cacheControl } = await this.#get(this.#jwksUri)
      const ttl = this.#ttl(maxAgeMs(cacheControl))
      this.#install(body)
      this.#fetchedAt = this.#options.now()
      this.#expiresAt = this.#fetchedAt + ttl
      this.#retryMs = FIRST_RETRY_MS
      delay = ttl
      this.#options.onFetch?.('ok')
      this.#readyResolve()
    } catch (err) {
      delay = this.#retryMs
      this.#retryMs = Math.min(this.#retryMs * 2, this.#options.cooldownMs)
      this.#options.onFetch?.('error', err as Error)
    }
    if (!this.#closed) {
      this.#timer = setTimeout(() => void this.refresh(), delay)
      this.#timer.unref()
    }
  }

  #ttl(maxAge: number | undefined): number {
    const { minTtlMs, maxTtlMs, defaultTtlMs } = this.#options
    return Math.min(maxTtlMs, Math.max(minTtlMs, maxAge ?? defaultTtlMs))
  }

  #install(body: unknown): void {
    const list = (body as { keys?: unknown } | null)?.keys
    if (typeof body !== 'object' || body === null || !Array.isArray(list)) {
      throw new Error('JWKS response is not a JSON object with a "keys" array')
    }
    const next = new Map<string, VerificationKey>()
    const unnamed: VerificationKey[] = []
    const refused: RefusedKey[] = []
    const refuse = (kid: unknown, reason: string) => {
      refused.push({ kid: typeof kid === 'string' ? kid.slice(0, 64) : '(none)', reason })
      this.#options.onKeySkipped(kid, reason)
    }
    for (const jwk of list) {
      const key = importVerificationKey(jwk, this.#options.algorithms)
      if (typeof key === 'string') {
        refuse((jwk as { kid?: unknown } | null)?.kid, key)
      } else if (key.unnamed) {
        unnamed.push(key)
      } else if (next.has(key.kid)) {
        // Two keys under one kid: neither can be chosen safely.
        next.delete(key.kid)
        refuse(key.kid, 'duplicate kid')
      } else {
        next.set(key.kid, key)
      }
    }
    // A token without kid can only mean the one key held for its algorithm; a key without kid is usable
    // only as such a key (no token can name it), so beside another key for its algorithm it is refused.
    const candidates = new Map<string, VerificationKey[]>()
    for (const key of [...next.values(), ...unnamed]) {
      candidates.set(key.alg, [...(candidates.get(key.alg) ?? []), key])
    }
    const sole = new Map<string, VerificationKey>()
    for (const [alg, keys] of candidates) {
      if (keys.length === 1) sole.set(alg, keys[0]!)
      else
        for (const key of keys.filter((k) => k.unnamed)) refuse(key.kid, `no kid and not the only ${alg} key`)
    }
    const usableUnnamed = unnamed.filter((key) => sole.get(key.alg) === key)
    // An issuer always publishes the key it signs with: a set with nothing usable in it is a broken answer
    // (a misconfigured issuer or proxy), not a withdrawal of every key, so it fails like any bad response and
    // the keys held keep serving up to the staleness bound. Revoking a key withdraws it from a set that still
    // holds others, and the revocation feed carries key revocations in any case.
    if (next.size === 0 && usableUnnamed.length === 0) throw new Error('JWKS response holds no usable key')
    const labels = new Set([...next.keys(), ...usableUnnamed.map((key) => key.kid)])
    const removed = [...this.#keys.keys(), ...this.#unnamed].filter((kid) => !labels.has(kid))
    this.#keys = next
    this.#unnamed = usableUnnamed.map((key) => key.kid)
    this.#soleKeys = sole
    this.#refused = refused
    this.#loaded = true
    if (removed.length > 0) for (const listener of this.#removedListeners) listener(removed)
  }

  async #discoverJwksUri(): Promise<string> {
    const { body } = await this.#get(`${this.issuer}/.well-known/openid-configuration`)
    const doc = body as { issuer?: unknown; jwks_uri?: unknown }
    if (
      doc?.issuer !== this.issuer ||
      typeof doc.jwks_uri !== 'string' ||
      !/^https?:\/\//.test(doc.jwks_uri)
    ) {
      throw new Error('discovery document does not name this issuer and a jwks_uri')
    }
    return doc.jwks_uri
  }

  /** GET with a time limit, no redirects, and a body size cap. */
  async #get(url: string): Promise<{ body: unknown; cacheControl: string | string[] | undefined }> {
    const { timeoutMs, maxBytes, dispatcher } = this.#options
    const signal = AbortSignal.timeout(timeoutMs)
    const res = await request(url, {
      method: 'GET',
      headers: { accept: 'application/json' },
      signal,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      ...(dispatcher ? { dispatcher } : {}),
    })
    // Destroying the body below emits an abort error; it is expected and handled by the throw that follows.
    res.body.on('error', () => {})
    if (res.statusCode !== 200) {
      res.body.destroy()
      throw new Error(`answered HTTP ${res.statusCode}`)
    }
    if (Number(res.headers['content-length'] ?? 0) > maxBytes) {
      res.body.destroy()
      throw new Error('body exceeds the size limit')
    }
    const body = await readCappedBody(res.body, maxBytes)
    if (body === undefined) throw new Error('body exceeds the size limit')
    return {
      body: JSON.parse(body.toString('utf8')),
      cacheControl: res.headers['cache-control'],
    }
  }
}
