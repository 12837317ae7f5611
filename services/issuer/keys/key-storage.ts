/**
 * Where the key set lives. One issuer (SQLite) keeps it in `keyset.json` (key-file.ts); issuers sharing a
 * PostgreSQL database keep it there, private keys sealed with KEY_ENCRYPTION_KEY (database-key-storage.ts).
 * Either way every change is a read-modify-write of the freshest copy under a lock, and a revision tells
 * a running issuer that another process changed the set. configured-key-storage.ts picks one by settings.
 */
import type { KeySetDocument } from './key-document.js'

/** The settings that choose and open the key storage; the issuer's settings extend them. */
export interface KeyStorageSettings {
  /** Where the key set lives: `keyset.json` in `keysDir`, or the shared PostgreSQL database. */
  keyStorage: 'file' | 'database'
  /** The directory of `keyset.json` (KEYS_DIR). */
  keysDir: string
  /** The key sealing private keys in the database (KEY_ENCRYPTION_KEY); a secret, never logged. */
  keyEncryptionKey: Buffer | undefined
}

/** A change to the set: return the same `doc` to leave it untouched. */
export type KeySetDocumentChange<R> = (doc: KeySetDocument) => Promise<{ doc: KeySetDocument; result: R }>

export interface KeyStorage {
  /** Where the set lives, for messages (a file path, or the database). */
  readonly location: string
  /** Reads the set (empty before first start) with its revision (undefined when there is none yet). */
  read(): Promise<{ doc: KeySetDocument; revision: string | undefined }>
  /** The current revision alone: cheap, polled every scheduler tick. */
  revision(): Promise<string | undefined>
  /** Applies `change` to the freshest set under the lock and returns the set as it now stands. */
  update<R>(
    change: KeySetDocumentChange<R>,
  ): Promise<{ doc: KeySetDocument; revision: string | undefined; result: R }>
}
