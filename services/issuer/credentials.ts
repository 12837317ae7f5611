/**
 * E-mail addresses and passwords: how they are normalised, what the policy accepts, how passwords are
 * hashed (argon2id at OWASP's parameters) and checked in about the same time whether or not an account
 * exists.
 */
import { randomBytes } from 'node:crypto'
import argon2 from 'argon2'

/** RFC 5321 limits a forward path to 254 characters. */
export const MAX_EMAIL_LENGTH = 254
/** Password policy: 8 to 128 characters (Unicode code points), anything allowed (NIST SP 800-63B). */
export const MIN_PASSWORD_LENGTH = 8
export const MAX_PASSWORD_LENGTH = 128

/** argon2id with OWASP's first recommended setting: 19 MiB of memory, 2 passes, 1 lane. */
export const PASSWORD_HASH_OPTIONS = {
  type: argon2.argon2id,
  memoryCost: 19_456,
  timeCost: 2,
  parallelism: 1,
} as const

/** One local part, `@`, a dotted domain; no spaces or angle brackets. Deliberately simple. */
const EMAIL_FORMAT = /^[^\s@<>()[\]\\,;:"]+@[^\s@<>()[\]\\,;:"]+\.[^\s@<>()[\]\\,;:".]{2,}$/u

/** Normalises an e-mail address (trim, Unicode NFC, lower case); undefined when it is not one. */
export function normaliseEmail(input: string): string | undefined {
  const email = input.trim().normalize('NFC').toLowerCase()
  if (email.length > MAX_EMAIL_LENGTH || !EMAIL_FORMAT.test(email)) return undefined
  if (
    email
      .split('@')[1]!
      .split('.')
      .some((label) => label === '')
  )
    return undefined
  return email
}

/** True when a password meets the policy (length counted in code points, as users count characters). */
export function passwordAcceptable(password: string): boolean {
  const length = [...password].length
  return length >= MIN_PASSWORD_LENGTH && length <= MAX_PASSWORD_LENGTH
}

/** Hashes a password for storage (PHC string). */
export function hashPassword(password: string): Promise<string> {
  return argon2.hash(password, PASSWORD_HASH_OPTIONS)
}

let dummyHash: Promise<string> | undefined

/**
 * Checks a password against a stored hash — or, when there is no account, against a fixed dummy hash of
 * the same cost, so a login for an unknown e-mail takes as long as one with a wrong password.
 */
export async function verifyPassword(hash: string | undefined, password: string): Promise<boolean> {
  dummyHash ??= hashPassword(randomBytes(32).toString('base64url'))
  const target = hash ?? (await dummyHash)
  let matches: boolean
  try {
    matches = await argon2.verify(target, password)
  } catch {
    matches = false
  }
  return matches && hash !== undefined
}
