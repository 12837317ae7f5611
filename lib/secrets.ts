/**
 * Secrets that components on one machine share without configuration (embedded defaults): generated once,
 * kept in a 0600 file under the data directory. Production sets them through configuration instead.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'

/** Length of a generated secret, in bytes. */
export const GENERATED_SECRET_BYTES = 32

/**
 * Reads the secret in `file`, creating it (and its directory) first if it does not exist. Creation is
 * exclusive, so two processes starting together end up with the same secret.
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
  try {
    writeFileSync(file, `${randomBytes(GENERATED_SECRET_BYTES).toString('base64url')}\n`, {
      mode: 0o600,
      flag: 'wx',
    })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  }
  return readFileSync(file, 'utf8').trim()
}
