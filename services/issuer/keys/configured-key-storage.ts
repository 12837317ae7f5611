/**
 * The key storage the settings call for. Kept apart from key-storage.ts, the interface both storages
 * implement, so that imports run one way: the storages import the interface, this file imports them.
 */
import type { KeySetStore } from '../store/types.js'
import { DatabaseKeyStorage } from './database-key-storage.js'
import { KeyFile } from './key-file.js'
import { KeySealer } from './key-sealing.js'
import type { KeyStorage, KeyStorageSettings } from './key-storage.js'

/**
 * The shared database (private keys sealed with KEY_ENCRYPTION_KEY) when DATABASE_URL is PostgreSQL,
 * `keyset.json` in KEYS_DIR otherwise.
 * @example
 * const keys = new KeySet({ storage: keyStorageFor(settings, store), schedule: settings, now: Date.now })
 */
export function keyStorageFor(settings: KeyStorageSettings, store: KeySetStore): KeyStorage {
  if (settings.keyStorage === 'file') return new KeyFile(settings.keysDir)
  if (!settings.keyEncryptionKey) {
    // issuerSettings() refuses this combination at start; a caller that builds settings by hand gets told too.
    throw new Error('keygate: KEY_ENCRYPTION_KEY is required to keep the key set in the database')
  }
  return new DatabaseKeyStorage({ store, sealer: new KeySealer(settings.keyEncryptionKey) })
}
