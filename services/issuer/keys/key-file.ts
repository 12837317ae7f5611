/**
 * `keyset.json` on disk: private keys, so the directory is 0700 and the file 0600. Every change is a
 * read-modify-write under a `proper-lockfile` lock and lands by atomic rename, so the command line and a
 * running issuer (or several issuers sharing the directory) never clobber or half-read each other.
 */
import { chmod, mkdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import lockfile from 'proper-lockfile'
import { replaceFile } from '../../../lib/atomic-file.js'
import { EMPTY_KEY_SET, type KeySetDocument, parseKeySetDocument } from './key-document.js'
import type { KeySetDocumentChange, KeyStorage } from './key-storage.js'

export const KEY_SET_FILE = 'keyset.json'
export const KEY_DIR_MODE = 0o700
export const KEY_FILE_MODE = 0o600
/** A lock older than this (ms) belongs to a crashed process and is taken over. */
const LOCK_STALE_MS = 10_000
const LOCK_RETRIES = { retries: 50, factor: 1.5, minTimeout: 20, maxTimeout: 250 }

/** The key set file of one directory. */
export class KeyFile implements KeyStorage {
  readonly dir: string
  readonly path: string

  constructor(dir: string) {
    this.dir = dir
    this.path = join(dir, KEY_SET_FILE)
  }

  get location(): string {
    return this.path
  }

  /** Reads the set (an empty set when the file does not exist yet) with the revision it was read at. */
  async read(): Promise<{ doc: KeySetDocument; revision: string | undefined }> {
    const revision = await this.revision()
    if (!revision) return { doc: EMPTY_KEY_SET, revision }
    let text: string
    try {
      text = await readFile(this.path, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { doc: EMPTY_KEY_SET, revision: undefined }
      throw err
    }
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      throw new Error(`keygate: key set ${this.path} is not valid JSON`)
    }
    return { doc: parseKeySetDocument(parsed, this.path), revision }
  }

  /**
   * The file's current revision (undefined when it does not exist): an atomic rename makes a new inode,
   * a write a new mtime.
   */
  async revision(): Promise<string | undefined> {
    try {
      const s = await stat(this.path)
      return `${s.ino}:${s.mtimeMs}:${s.size}`
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
  }

  /**
   * Applies `change` to the freshest copy of the set under the lock and writes the result when it differs.
   * Returns the document as it now stands on disk.
   */
  async update<R>(
    change: KeySetDocumentChange<R>,
  ): Promise<{ doc: KeySetDocument; revision: string | undefined; result: R }> {
    await mkdir(this.dir, { recursive: true, mode: KEY_DIR_MODE })
    // mkdir leaves an existing directory's mode alone; a key directory is never readable by others.
    await chmod(this.dir, KEY_DIR_MODE)
    let compromised: Error | undefined
    const release = await lockfile.lock(this.path, {
      realpath: false,
      stale: LOCK_STALE_MS,
      retries: LOCK_RETRIES,
      // The default throws from a timer, crashing the process; refusing to write is enough.
      onCompromised: (err) => {
        compromised = err
      },
    })
    try {
      const current = await this.read()
      const { doc, result } = await change(current.doc)
      if (doc === current.doc) return { ...current, result }
      if (compromised) {
        throw new Error(`keygate: lost the lock on ${this.path} (${compromised.message}); nothing was written`)
      }
      await this.#writeAtomically(doc)
      return { doc, revision: await this.revision(), result }
    } finally {
      await release().catch(() => {
        // A compromised lock may already be gone; there is nothing left to release.
      })
    }
  }

  async #writeAtomically(doc: KeySetDocument): Promise<void> {
    await replaceFile(this.path, `${JSON.stringify(doc, null, 2)}\n`, KEY_FILE_MODE)
  }
}
