/**
 * Secrets: the one constant-time comparison every check of a presented secret uses, and the secrets that
 * components on one machine share without configuration (embedded defaults): generated once, kept in a
 * 0600 file under the data directory. Production sets them through configuration instead.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createFileOnceSync } from './atomic-file.js'

/**
 * Whether a presented secret equals the expected one, in a time that depends neither on where they first
 * differ nor on their lengths: both are hashed to SHA-256 first, and the fixed-length digests are compared
 * with `timingSafeEqual`. Every check of a presented secret (CSRF token, feed secret) goes through here.
 * @example
 * if (!sameSecret(request.headers['x-csrf-token'] ?? '', expected)) throw new KeygateError('KG_CSRF_FAILED')
 */
export function sameSecret(presented: string | Uint8Array, expected: string | Uint8Array): boolean {
  return timingSafeEqual(sha256(presented), sha256(expected))
}

function sha256(value: string | Uint8Array): Buffer {
  return createHash('sha256').update(value).digest()
}

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
  // When two processes race, the first one's secret is the one both read.
  createFileOnceSync(file, `${randomBytes(GENERATED_SECRET_BYTES).toString('base64url')}\n`)
  return readFileSync(file, 'utf8').trim()
}
