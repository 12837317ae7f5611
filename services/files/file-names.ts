/**
 * What a file name may be, and how it is put in a header. Names are 1..128 characters of
 * `[A-Za-z0-9._-]`, never `.` or `..`: safe in a URL segment, a header and any file system, so nothing
 * needs escaping and no path can be steered by them (files are stored in the database regardless).
 */

/** Longest file name, in characters. */
export const MAX_FILE_NAME_CHARS = 128

/** JSON-schema pattern of a file name (route params are validated with it). */
export const FILE_NAME_PATTERN = `^(?!\\.{1,2}$)[A-Za-z0-9._-]{1,${MAX_FILE_NAME_CHARS}}$`

const FILE_NAME = new RegExp(FILE_NAME_PATTERN)

/** `Content-Disposition` of a download: always an attachment, never rendered in place. */
export function attachmentDisposition(name: string): string {
  // Every allowed character is a plain token character; refuse anything else rather than escape it.
  if (!FILE_NAME.test(name)) throw new Error('keygate files: refusing an unvalidated file name in a header')
  return `attachment; filename="${name}"`
}

/** Longest Content-Type stored, in characters. */
export const MAX_CONTENT_TYPE_CHARS = 255
/** Content-Type of an upload that names none. */
export const DEFAULT_CONTENT_TYPE = 'application/octet-stream'

const TOKEN = "[A-Za-z0-9!#$%&'*+.^_`|~-]+"
const MEDIA_TYPE = new RegExp(
  `^${TOKEN}/${TOKEN}(?:[ \\t]*;[ \\t]*${TOKEN}=(?:${TOKEN}|"[^"\\\\\\x00-\\x1f\\x7f]*"))*$`,
)

/**
 * The Content-Type to store for an upload: the one given if it is a well-formed media type (RFC 9110
 * §8.3.1), the default if none; undefined when it is malformed (the upload is refused).
 */
export function storedContentType(header: string | undefined): string | undefined {
  if (header === undefined || header.trim() === '') return DEFAULT_CONTENT_TYPE
  const value = header.trim()
  return value.length <= MAX_CONTENT_TYPE_CHARS && MEDIA_TYPE.test(value) ? value : undefined
}
