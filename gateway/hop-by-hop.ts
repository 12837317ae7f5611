/**
 * Headers that belong to one hop (RFC 9110 §7.6.1): never forwarded, in either direction, together with
 * those a `Connection` header names. Both the upstream request (upstream-request.ts) and the relayed
 * response (response-headers.ts) drop them.
 */

/** Never forwarded either way. */
export const HOP_BY_HOP: readonly string[] = [
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]

/** `Connection` tokens that are options, not header names. */
const CONNECTION_OPTIONS = /^\s*(keep-alive|close)\s*$/i

/** The (lower-case) header names a `Connection` header lists; undefined when it lists none. */
export function connectionListed(connection: string | string[] | undefined): Set<string> | undefined {
  if (connection === undefined || CONNECTION_OPTIONS.test(String(connection))) return undefined
  const names = new Set<string>()
  for (const token of String(connection).split(',')) {
    const name = token.trim().toLowerCase()
    if (name !== '') names.add(name)
  }
  return names
}
