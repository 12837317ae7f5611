/**
 * Strict parsing of a JWS in compact serialization (RFC 7515 §7.1), before anything else looks at a token:
 * three segments of canonical unpadded base64url, a header and payload that are UTF-8 JSON objects without
 * duplicate member names, a size cap. Anything else (JWE, JSON serialization, padding, whitespace) is refused.
 */
import { isUtf8 } from 'node:buffer'
import { KeygateError } from './errors.js'

/** Default cap on the length of a token, in bytes (keygate's own access tokens are well under 1 KiB). */
export const DEFAULT_MAX_TOKEN_BYTES = 8192

export interface ParsedJws {
  /** Frozen: parsed headers are shared between the tokens that carry the same one. */
  readonly header: Readonly<Record<string, unknown>>
  readonly payload: Record<string, unknown>
  /** `BASE64URL(header) "." BASE64URL(payload)`: the bytes the signature covers. */
  readonly signingInput: string
  readonly signature: Buffer
}

const BASE64URL = /^[A-Za-z0-9_-]+$/

function malformed(message: string): KeygateError {
  return new KeygateError('KG_TOKEN_MALFORMED', { message: `The access token is malformed: ${message}` })
}

/** Value of a base64url character (the alphabet was checked already). */
function sextet(code: number): number {
  if (code >= 97) return code - 71 // a-z: 26..51
  if (code === 95) return 63 // '_'
  if (code >= 65) return code - 65 // A-Z: 0..25
  if (code >= 48) return code + 4 // 0-9: 52..61
  return 62 // '-'
}

/** Decodes one segment, refusing non-canonical encodings (padding, stray bits, a length of 4n+1). */
function decodeSegment(segment: string, what: string): Buffer {
  const rest = segment.length % 4
  if (segment.length === 0 || !BASE64URL.test(segment) || rest === 1) {
    throw malformed(`${what} is not base64url`)
  }
  // Canonical form only: the bits the last character carries past the final byte must be zero (the same
  // test as "re-encoding gives back the very same text", without encoding again).
  if (rest !== 0 && (sextet(segment.charCodeAt(segment.length - 1)) & (rest === 2 ? 0x0f : 0x03)) !== 0) {
    throw malformed(`${what} is not canonical base64url`)
  }
  return Buffer.from(segment, 'base64url')
}

function decodeJsonObject(segment: string, what: string): Record<string, unknown> {
  const bytes = decodeSegment(segment, what)
  // Validated first, then decoded as is: a leading U+FEFF (byte order mark) stays in the text, so JSON.parse
  // refuses the segment instead of a decoder silently dropping it.
  if (!isUtf8(bytes)) throw malformed(`${what} is not UTF-8`)
  const text = bytes.toString('utf8')
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw malformed(`${what} is not JSON`)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw malformed(`${what} is not a JSON object`)
  }
  if (hasDuplicateMembers(text)) throw malformed(`${what} has duplicate member names`)
  return value as Record<string, unknown>
}

/**
 * Parses a compact JWS strictly. Throws `KG_TOKEN_TOO_LARGE` or `KG_TOKEN_MALFORMED`.
 * @example
 * const { header, payload, signingInput, signature } = parseCompactJws(token)
 */
export function parseCompactJws(token: string, maxBytes = DEFAULT_MAX_TOKEN_BYTES): ParsedJws {
  if (token.length > maxBytes) throw new KeygateError('KG_TOKEN_TOO_LARGE')
  const first = token.indexOf('.')
  const second = first === -1 ? -1 : token.indexOf('.', first + 1)
  if (second === -1 || token.indexOf('.', second + 1) !== -1) {
    throw malformed('a JWS in compact form has exactly three segments')
  }
  const header = headerOf(token.slice(0, first))
  const payload = decodeJsonObject(token.slice(first + 1, second), 'payload')
  const signature = decodeSegment(token.slice(second + 1), 'signature')
  return { header, payload, signingInput: token.slice(0, second), signature }
}

/** Distinct header segments remembered, and the longest one remembered, in characters. */
const HEADER_CACHE_SIZE = 16
const MAX_CACHED_HEADER_CHARS = 512

/**
 * Headers that parsed, by their segment: the tokens of one issuer's key share one header, so a never-seen
 * token's header is usually one already parsed. A pure function of the segment's text, so the verdict is
 * the same; only successes are kept (a refused header is parsed, and refused, every time), frozen, and at
 * most HEADER_CACHE_SIZE of them (emptied when full: many distinct headers cost what no cache costs).
 */
const parsedHeaders = new Map<string, Readonly<Record<string, unknown>>>()

function headerOf(segment: string): Readonly<Record<string, unknown>> {
  const known = parsedHeaders.get(segment)
  if (known !== undefined) return known
  const header = Object.freeze(decodeJsonObject(segment, 'header'))
  if (segment.length <= MAX_CACHED_HEADER_CHARS) {
    if (parsedHeaders.size >= HEADER_CACHE_SIZE) parsedHeaders.clear()
    parsedHeaders.set(segment, header)
  }
  return header
}

/**
 * True when any JSON object in `text` names a member twice. JSON.parse keeps the last one silently, so two
 * parsers could disagree on what a token says; RFC 7515 §4 lets us refuse it. `text` is valid JSON here.
 */
export function hasDuplicateMembers(text: string): boolean {
  // The member names of each open object (`null` for an open array). Characters are compared as UTF-16
  // codes, and a name without escapes is sliced rather than parsed: the scan runs on every token.
  const stack: Array<MemberNames | null> = []
  let expectKey = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 123 /* { */) {
      stack.push(new MemberNames())
      expectKey = true
    } else if (c === 91 /* [ */) {
      stack.push(null)
      expectKey = false
    } else if (c === 125 /* } */ || c === 93 /* ] */) {
      stack.pop()
      expectKey = false
    } else if (c === 44 /* , */) {
      expectKey = stack.at(-1) instanceof MemberNames
    } else if (c === 34 /* " */) {
      let j = i + 1
      let escaped = false
      for (let d = text.charCodeAt(j); d !== 34; d = text.charCodeAt(j)) {
        if (d === 92 /* \\ */) {
          escaped = true
          j += 2
        } else {
          j++
        }
      }
      if (expectKey) {
        const name = escaped ? (JSON.parse(text.slice(i, j + 1)) as string) : text.slice(i + 1, j)
        if (!(stack.at(-1) as MemberNames).add(name)) return true
        expectKey = false
      }
      i = j
    }
  }
  return false
}

/** Members searched in a list below this count (a token's objects are small), in a set from then on. */
const MEMBER_LIST_LIMIT = 16

/** The member names of one object seen so far. */
class MemberNames {
  #list: string[] | undefined = []
  #set: Set<string> | undefined

  /** Adds a name; false when it was already there. */
  add(name: string): boolean {
    const list = this.#list
    if (list !== undefined) {
      if (list.includes(name)) return false
      if (list.length < MEMBER_LIST_LIMIT) {
        list.push(name)
        return true
      }
      this.#set = new Set(list)
      this.#list = undefined
    }
    const set = this.#set!
    if (set.has(name)) return false
    set.add(name)
    return true
  }
}
