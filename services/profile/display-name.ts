/**
 * What a display name may be: 1 to 64 characters once trimmed, on one line, with no control characters
 * (C0/C1, line and paragraph separators) and no bidirectional overrides, which would let a name rewrite
 * how the text around it is shown wherever it is displayed (orders record it, others render it).
 */
import { KeygateError } from '../../lib/errors.js'

/** Longest display name, in characters (code points) after trimming. */
export const MAX_DISPLAY_NAME_CHARS = 64
/** Longest value accepted before trimming, in characters: room for surrounding blanks, no more. */
export const MAX_DISPLAY_NAME_INPUT_CHARS = 256

const FORBIDDEN = /[\p{Cc}\p{Zl}\p{Zp}\u202A-\u202E\u2066-\u2069]/u

/**
 * The display name to store for `input` (trimmed, NFC-normalised), or a 400 saying why not.
 * @example
 * displayNameFrom('  Alice  ') // 'Alice'
 */
export function displayNameFrom(input: string): string {
  const name = input.normalize('NFC').trim()
  const length = [...name].length
  if (length === 0) throw invalid('must not be blank')
  if (length > MAX_DISPLAY_NAME_CHARS) throw invalid(`must be at most ${MAX_DISPLAY_NAME_CHARS} characters`)
  if (FORBIDDEN.test(name)) throw invalid('must not contain control characters')
  return name
}

function invalid(reason: string): KeygateError {
  return new KeygateError('KG_INVALID_REQUEST', { message: `Invalid body/displayName: ${reason}` })
}
