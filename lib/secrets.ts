/**
 * Secrets that components on one machine share without configuration (embedded defaults): generated once,
 * kept in a 0600 file under the data directory. Production sets them through configuration instead.
 */
import { randomBytes } from 'node:crypto'
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'

/** Length of a generated secret, in bytes. */
export const GENERATED_SECRET_BYTES = 32

/**
 * Reads the secret in `file`, creating it (and its directory) first if it does not exist. Two processes
 * starting together end up with the same secret.
 * @example
 * const secret = loadOrCreateSecret('data/revocation-feed.secret')
 */
export function loadOrCreateSecret(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 })
  // Written whole to a private temp file, then linked into place: a reader never sees a half-written
  // secret, and when two processes race, the first link wins and both read the winner.
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  writeFileSync(temp, `${randomBytes(GENERATED_SECRET_BYTES).toString('base64url')}\n`, { mode: 0o600 })
  try {
    linkSync(temp, file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  } finally {
    unlinkSync(temp)
  }
  return readFileSync(file, 'utf8').trim()
}
