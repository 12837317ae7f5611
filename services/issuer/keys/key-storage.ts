/**
 * Where the key set lives. One issuer (SQLite) keeps it in `keyset.json` (key-file.ts); issuers sharing a
 * PostgreSQL database keep it there, private keys sealed with KEY_ENCRYPTION_KEY (database-key-storage.ts).
 * Either way every change is a read-modify-write of the freshest copy under a lock, and a revision tells
 * a running issuer that another process changed the set.
 */
import type { IssuerSettings } from '../config.js'
import type { IssuerStore } from '../store/types.js'
import { DatabaseKeyStorage } from './database-key-storage.js'
import type { KeySetDocument } from './key-document.js'
import { KeyFile } from './key-file.js'
import { KeySealer } from './key-sealing.js'

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

/**
 * The storage the settings call for: the shared database (private keys sealed with KEY_ENCRYPTION_KEY)
 * when DATABASE_URL is PostgreSQL, `keyset.json` in KEYS_DIR otherwise.
 */
export function keyStorageFor(
  settings: Pick<IssuerSettings, 'keyStorage' | 'keysDir' | 'keyEncryptionKey'>,
  store: IssuerStore,
): KeyStorage {
  if (settings.keyStorage === 'file') return new KeyFile(settings.keysDir)
  return new DatabaseKeyStorage({ store, sealer: new KeySealer(settings.keyEncryptionKey!) })
}
