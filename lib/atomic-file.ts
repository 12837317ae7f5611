/**
 * Files that must never be seen half-written (generated secrets, key files): the contents go to a private
 * temporary file beside the target, are flushed to disk, and only then take the target's name in one step —
 * a hard link when the first writer must win (a reader gets the winner's complete file), a rename when the
 * file is replaced. The one place keygate writes such files.
 */
import { randomBytes } from 'node:crypto'
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, unlinkSync, writeFileSync } from 'node:fs'
import { link, mkdir, open, rename, rm, unlink } from 'node:fs/promises'
import { dirname } from 'node:path'

/** Mode of the files written here (they hold secrets), and of a directory created for them. */
export const PRIVATE_FILE_MODE = 0o600
export const PRIVATE_DIR_MODE = 0o700

/**
 * Creates `file` with `contents` unless it exists (creating its directory, 0700, if needed). When several
 * processes race, exactly one creates it; the others return false and read what it wrote.
 * @returns true when this call created the file, false when one was already there
 * @example
 * await createFileOnce('keys/gateway-assertion-key.json', `${JSON.stringify(jwk)}\n`)
 * const jwk = JSON.parse(await readFile('keys/gateway-assertion-key.json', 'utf8'))
 */
export async function createFileOnce(
  file: string,
  contents: string,
  mode = PRIVATE_FILE_MODE,
): Promise<boolean> {
  await mkdir(dirname(file), { recursive: true, mode: PRIVATE_DIR_MODE })
  const temporary = await writeTemporary(file, contents, mode)
  try {
    await link(temporary, file)
  } catch (err) {
    if (!alreadyExists(err)) throw err
    return false
  } finally {
    await unlink(temporary)
  }
  await syncDirectory(dirname(file))
  return true
}

/**
 * `createFileOnce` for callers that cannot wait (a secret read while a config is turned into options).
 * @example
 * createFileOnceSync('data/revocation-feed.secret', `${secret}\n`)
 */
export function createFileOnceSync(file: string, contents: string, mode = PRIVATE_FILE_MODE): boolean {
  mkdirSync(dirname(file), { recursive: true, mode: PRIVATE_DIR_MODE })
  const temporary = temporaryName(file)
  const fd = openSync(temporary, 'wx', mode)
  try {
    writeFileSync(fd, contents)
    fsyncSync(fd)
  } catch (err) {
    closeSync(fd)
    unlinkSync(temporary)
    throw err
  }
  closeSync(fd)
  try {
    linkSync(temporary, file)
  } catch (err) {
    if (!alreadyExists(err)) throw err
    return false
  } finally {
    unlinkSync(temporary)
  }
  const dir = openSync(dirname(file), 'r')
  try {
    fsyncSync(dir)
  } finally {
    closeSync(dir)
  }
  return true
}

/**
 * Replaces `file` (or creates it; its directory must exist) with `contents`: a reader sees the old file or
 * the new one, never a mix, and after a crash the new one is on disk once this resolved.
 * @example
 * await replaceFile('keys/keyset.json', `${JSON.stringify(doc, null, 2)}\n`)
 */
export async function replaceFile(file: string, contents: string, mode = PRIVATE_FILE_MODE): Promise<void> {
  const temporary = await writeTemporary(file, contents, mode)
  try {
    await rename(temporary, file)
  } catch (err) {
    await rm(temporary, { force: true })
    throw err
  }
  // The rename is durable only once the directory entry is on disk.
  await syncDirectory(dirname(file))
}

/** Beside the target (same file system, so link and rename are atomic), unique per process and call. */
function temporaryName(file: string): string {
  return `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`
}

async function writeTemporary(file: string, contents: string, mode: number): Promise<string> {
  const temporary = temporaryName(file)
  const handle = await open(temporary, 'wx', mode)
  try {
    await handle.writeFile(contents)
    await handle.sync()
  } catch (err) {
    await handle.close()
    await rm(temporary, { force: true })
    throw err
  }
  await handle.close()
  return temporary
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

function alreadyExists(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'EEXIST'
}
