/**
 * The issuer's live key set: the document from its storage (`keyset.json`, or the shared database) with its
 * keys imported once (private keys as WebCrypto keys for signing, public keys as KeyObjects for verifying),
 * the JWKS it publishes, and the changes it makes through the storage. Changes made by another process (the
 * command line, another issuer instance) are picked up by `reloadIfChanged()`, which the scheduler calls
 * every tick.
 */
import { createPublicKey, type JsonWebKey } from 'node:crypto'
import { importJWK, type JWK } from 'jose'
import type { KeySource, VerificationKey } from '@keygate/fastify-auth'
import {
  EMPTY_KEY_SET,
  KEY_STATES,
  type KeySetDocument,
  keyIn,
  type KeyState,
  publicJwk,
  publishedKeys,
  SIGNING_ALGORITHM,
  type StoredKey,
} from './key-document.js'
import type { KeyStorage } from './key-storage.js'
import {
  ensureKeys,
  type KeySchedule,
  maintainKeys,
  maintenanceDue,
  revokeKey,
  rotateKeys,
} from './lifecycle.js'

export interface KeySetOptions {
  /** Where the set lives: `keyset.json` (KeyFile) or the shared database (see keyStorageFor). */
  storage: KeyStorage
  schedule: KeySchedule
  /** Current time in milliseconds. */
  now: () => number
}

/** RFC 7518 §3.3: an RS256 key has at least 2048 bits. */
const MIN_RSA_BITS = 2048

/** The key that signs now. */
export interface SigningKey {
  kid: string
  key: CryptoKey
}

/** What a change to the set did, for logs and revocation events. */
export interface KeyChange {
  before: KeySetDocument
  after: KeySetDocument
}

/** The issuer's signing keys, in memory and in their storage. */
export class KeySet {
  readonly storage: KeyStorage
  readonly #schedule: KeySchedule
  readonly #now: () => number
  #doc: KeySetDocument = EMPTY_KEY_SET
  #revision: string | undefined
  #loaded = false
  #signing: SigningKey | undefined
  #jwks: { keys: JWK[] } = { keys: [] }
  readonly #privateKeys = new Map<string, CryptoKey>()
  readonly #publicKeys = new Map<string, VerificationKey>()
  readonly #removedListeners: Array<(kids: string[]) => void> = []
  readonly #changeListeners: Array<(change: KeyChange) => void> = []

  constructor(options: KeySetOptions) {
    this.storage = options.storage
    this.#schedule = options.schedule
    this.#now = options.now
  }

  /** Loads the set, generating the first `active` and `next` keys when there are none. */
  async load(): Promise<void> {
    const { doc, revision } = await this.storage.update(async (current) => ({
      doc: await ensureKeys(current, this.#now(), this.#schedule),
      result: undefined,
    }))
    await this.#apply(doc, revision)
    this.#loaded = true
  }

  get loaded(): boolean {
    return this.#loaded
  }

  /** The set as last loaded. */
  get document(): KeySetDocument {
    return this.#doc
  }

  /** Reloads when another process changed the set since we last read or wrote it. */
  async reloadIfChanged(): Promise<boolean> {
    const revision = await this.storage.revision()
    if (!revision || revision === this.#revision) return false
    const { doc, revision: readRevision } = await this.storage.read()
    await this.#apply(doc, readRevision)
    return true
  }

  /**
   * Runs the schedule: fills a set missing keys, rotates when due, drops keys whose time is up. Returns
   * whether it changed the set (not when another process had already done the work on the freshest copy).
   */
  async maintain(): Promise<boolean> {
    if (!maintenanceDue(this.#doc, this.#now(), this.#schedule)) return false
    return this.#change(async (doc) => {
      const now = this.#now()
      if (!maintenanceDue(doc, now, this.#schedule)) return { doc, result: false }
      return { doc: await maintainKeys(doc, now, this.#schedule), result: true }
    })
  }

  /** Rotates on demand (refused while the next key is younger than the publication lead). */
  async rotate(): Promise<KeySetDocument> {
    await this.#change(async (doc) => ({ doc: await rotateKeys(doc, this.#now(), this.#schedule) }))
    return this.#doc
  }

  /** Revokes a key at once; returns the key as revoked. */
  async revoke(kid: string): Promise<StoredKey> {
    return this.#change(async (doc) => {
      const { doc: after, revoked } = await revokeKey(doc, kid, this.#now(), this.#schedule)
      return { doc: after, result: revoked }
    })
  }

  /** The key that signs now. Throws before `load()`. */
  signingKey(): SigningKey {
    if (!this.#signing) throw new Error('keygate: the key set has no active key loaded')
    return this.#signing
  }

  /** The published JWKS: next, active and retired keys, public parts only. */
  jwks(): { keys: JWK[] } {
    return this.#jwks
  }

  /** How many keys are in each state (for metrics). */
  countByState(): Record<KeyState, number> {
    const counts = Object.fromEntries(KEY_STATES.map((s) => [s, 0])) as Record<KeyState, number>
    for (const key of this.#doc.keys) counts[key.state]++
    return counts
  }

  /** Called with the kids that stop verifying (revoked or dropped). */
  onKeysRemoved(listener: (kids: string[]) => void): void {
    this.#removedListeners.push(listener)
  }

  /** Called after every change, whoever made it (this process or another). */
  onChange(listener: (change: KeyChange) => void): void {
    this.#changeListeners.push(listener)
  }

  /** The set as a verification key source, for the shared auth plugin guarding the issuer's own routes. */
  keySource(): KeySource {
    return {
      getKey: (kid) => this.#publicKeys.get(kid),
      ready: async () => {
        if (!this.#loaded) throw new Error('keygate: the key set is not loaded')
      },
      usable: () => this.#loaded,
      onKeysRemoved: (listener) => this.onKeysRemoved(listener),
      close: async () => {},
    }
  }

  async #change<R>(change: (doc: KeySetDocument) => Promise<{ doc: KeySetDocument; result?: R }>): Promise<R> {
    const { doc, revision, result } = await this.storage.update(async (current) => {
      const out = await change(current)
      return { doc: out.doc, result: out.result as R }
    })
    await this.#apply(doc, revision)
    return result
  }

  async #apply(doc: KeySetDocument, revision: string | undefined): Promise<void> {
    const before = this.#doc
    const active = keyIn(doc, 'active')
    // Import before swapping anything in, so a failure leaves the previous set serving.
    for (const key of doc.keys) {
      if ((key.state === 'active' || key.state === 'next') && !this.#privateKeys.has(key.kid)) {
        this.#privateKeys.set(key.kid, await signingCryptoKey(key))
      }
    }
    const published = publishedKeys(doc)
    const publicKeys = new Map<string, VerificationKey>()
    for (const key of published) {
      publicKeys.set(
        key.kid,
        this.#publicKeys.get(key.kid) ?? {
          kid: key.kid,
          alg: SIGNING_ALGORITHM,
          key: createPublicKey({ key: publicJwk(key) as JsonWebKey, format: 'jwk' }),
        },
      )
    }
    const removed = [...this.#publicKeys.keys()].filter((kid) => !publicKeys.has(kid))
    for (const kid of this.#privateKeys.keys()) {
      const key = doc.keys.find((k) => k.kid === kid)
      if (!key || (key.state !== 'active' && key.state !== 'next')) this.#privateKeys.delete(kid)
    }
    this.#doc = doc
    this.#revision = revision
    this.#publicKeys.clear()
    for (const [kid, key] of publicKeys) this.#publicKeys.set(kid, key)
    this.#jwks = { keys: published.map(publicJwk) }
    this.#signing = active && { kid: active.kid, key: this.#privateKeys.get(active.kid)! }
    if (removed.length) for (const listener of this.#removedListeners) listener(removed)
    if (before !== doc) for (const listener of this.#changeListeners) listener({ before, after: doc })
  }
}

/**
 * Imports a stored key for signing, refusing one too short for RS256 (a hand-made or foreign key set) when
 * the set loads: the access tokens are signed by WebCrypto directly, without jose's check at each signature.
 */
async function signingCryptoKey(key: StoredKey): Promise<CryptoKey> {
  const imported = (await importJWK({ ...key.privateJwk, alg: SIGNING_ALGORITHM }, SIGNING_ALGORITHM)) as CryptoKey
  if ((imported.algorithm as RsaHashedKeyAlgorithm).modulusLength < MIN_RSA_BITS) {
    throw new Error(`keygate: key ${key.kid} is not an RSA key of at least ${MIN_RSA_BITS} bits`)
  }
  return imported
}
