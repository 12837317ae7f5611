/**
 * The key set in the issuer's database, for several issuer instances on one PostgreSQL: every instance
 * signs with the same keys, changes are serialised by the set's row lock, and the revision tells each
 * instance (polling every scheduler tick) that another one changed the set. Private keys are stored only
 * sealed (key-sealing.ts); everything else is plain columns an operator can query.
 */
import type { KeySetStore, SealedKeyRecord, StoredKeySet } from '../store/types.js'
import { EMPTY_KEY_SET, type KeySetDocument, parseKeySetDocument, type StoredKey } from './key-document.js'
import type { KeySealer } from './key-sealing.js'
import type { KeySetDocumentChange, KeyStorage } from './key-storage.js'

export interface DatabaseKeyStorageOptions {
  /** The issuer's store, of which only the key set is used. */
  store: KeySetStore
  sealer: KeySealer
}

/** The key set as rows of `signing_keys`. */
export class DatabaseKeyStorage implements KeyStorage {
  readonly location = 'the database (signing_keys)'
  readonly #store: KeySetStore
  readonly #sealer: KeySealer

  constructor(options: DatabaseKeyStorageOptions) {
    this.#store = options.store
    this.#sealer = options.sealer
  }

  async read(): Promise<{ doc: KeySetDocument; revision: string | undefined }> {
    const stored = await this.#store.readKeySet()
    return { doc: this.#open(stored), revision: revisionOf(stored.revision) }
  }

  async revision(): Promise<string | undefined> {
    return revisionOf(await this.#store.keySetRevision())
  }

  async update<R>(
    change: KeySetDocumentChange<R>,
  ): Promise<{ doc: KeySetDocument; revision: string | undefined; result: R }> {
    let doc: KeySetDocument | undefined
    const stored = await this.#store.updateKeySet(async (current) => {
      const before = this.#open(current)
      const out = await change(before)
      if (out.doc === before) {
        doc = before
        return { result: out.result }
      }
      // In the order a read returns, so every instance publishes the same JWKS, key for key.
      doc = { ...out.doc, keys: [...out.doc.keys].sort(byCreation) }
      // A key's private half never changes: keep its sealed form, seal only keys new to the set.
      const sealed = new Map(current.keys.map((k) => [k.kid, k.sealedPrivateKey]))
      return { keys: doc.keys.map((k) => this.#seal(k, sealed.get(k.kid))), result: out.result }
    })
    return { doc: doc!, revision: revisionOf(stored.revision), result: stored.result }
  }

  #open(stored: StoredKeySet): KeySetDocument {
    if (stored.keys.length === 0) return EMPTY_KEY_SET
    const keys = stored.keys.map(
      (row): StoredKey => ({
        kid: row.kid,
        state: row.state,
        createdAt: row.createdAt,
        ...optional('activatedAt', row.activatedAt),
        ...optional('retiredAt', row.retiredAt),
        ...optional('revokedAt', row.revokedAt),
        ...optional('removeAt', row.removeAt),
        privateJwk: this.#sealer.open(row.kid, row.sealedPrivateKey),
      }),
    )
    // The same checks as a hand-edited keyset.json: a damaged set fails loudly instead of signing nothing.
    return parseKeySetDocument({ version: 1, keys: keys.sort(byCreation) }, this.location)
  }

  #seal(key: StoredKey, sealed: string | undefined): SealedKeyRecord {
    return {
      kid: key.kid,
      state: key.state,
      createdAt: key.createdAt,
      activatedAt: key.activatedAt ?? null,
      retiredAt: key.retiredAt ?? null,
      revokedAt: key.revokedAt ?? null,
      removeAt: key.removeAt ?? null,
      sealedPrivateKey: sealed ?? this.#sealer.seal(key.kid, key.privateJwk),
    }
  }
}

/** One order for every instance (whatever the database's collation): oldest first, then by kid. */
function byCreation(a: StoredKey, b: StoredKey): number {
  return a.createdAt - b.createdAt || (a.kid < b.kid ? -1 : a.kid > b.kid ? 1 : 0)
}

/** Revision 0 is the empty set before first start. */
function revisionOf(revision: number): string | undefined {
  return revision === 0 ? undefined : String(revision)
}

function optional<K extends string>(name: K, value: number | null): Partial<Record<K, number>> {
  return value === null ? {} : ({ [name]: value } as Record<K, number>)
}
