/**
 * What headers cross the gateway, each way. Hop-by-hop headers (RFC 9110 §7.6.1) and those a `Connection`
 * header names stay on their hop; the forwarding chain (`X-Forwarded-*`) is rebuilt from what the gateway
 * trusts; the request id travels both ways. The client's headers are copied first and the gateway's added
 * after, so a client can never use `Connection` to remove what the gateway sets.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import type { UpstreamHeaders } from './identity-headers.js'

/** Never forwarded either way. */
const HOP_BY_HOP = [
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

/**
 * Client headers the gateway replaces or refuses to pass on: its own forwarding chain, the request id, the
 * target host (the upstream's), `Expect` (answered by Node itself), and `Authorization` (relayed only by the
 * route's forward policy).
 */
const REPLACED_REQUEST_HEADERS = [
  'host',
  'expect',
  'authorization',
  'x-request-id',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-forwarded-port',
  'x-forwarded-prefix',
  'x-real-ip',
  'forwarded',
]

const DROPPED_REQUEST_HEADERS: ReadonlySet<string> = new Set([...HOP_BY_HOP, ...REPLACED_REQUEST_HEADERS])
const DROPPED_RESPONSE_HEADERS: ReadonlySet<string> = new Set([...HOP_BY_HOP, 'x-request-id'])

/** `Connection` tokens that are options, not header names. */
const CONNECTION_OPTIONS = /^\s*(keep-alive|close)\s*$/i

/**
 * The headers to send upstream: the client's, minus hop-by-hop ones, those its `Connection` lists, and those
 * `isIdentityHeader` rejects; plus the forwarding chain and the request id.
 */
export function upstreamRequestHeaders(
  request: FastifyRequest,
  isIdentityHeader: (name: string) => boolean,
): UpstreamHeaders {
  const incoming = request.headers
  const listed = connectionListed(incoming.connection)
  const headers: UpstreamHeaders = {}
  for (const name in incoming) {
    if (DROPPED_REQUEST_HEADERS.has(name) || isIdentityHeader(name) || listed?.has(name)) continue
    const value = incoming[name]
    if (value !== undefined) headers[name] = value
  }
  // Only what trusted hops said is kept: request.ips stops at the first untrusted address.
  headers['x-forwarded-for'] =
    incoming['x-forwarded-for'] === undefined
      ? (request.raw.socket.remoteAddress ?? '')
      : request.ips!.reverse().join(', ')
  headers['x-forwarded-proto'] = request.protocol
  if (request.host !== '') headers['x-forwarded-host'] = request.host
  headers['x-request-id'] = request.id
  return headers
}

/**
 * Copies an upstream response's headers onto the reply, minus hop-by-hop ones and CORS headers (the gateway
 * alone decides CORS); `Vary` is merged with the gateway's own. The request id is the gateway's.
 */
export function copyResponseHeaders(reply: FastifyReply, headers: IncomingHttpHeaders): void {
  const listed = connectionListed(headers.connection)
  for (const name in headers) {
    if (DROPPED_RESPONSE_HEADERS.has(name) || listed?.has(name) || name.startsWith('access-control-'))
      continue
    const value = headers[name]
    if (value === undefined) continue
    if (name === 'vary') {
      const ours = reply.getHeader('vary')
      reply.header('vary', ours === undefined ? value : `${String(ours)}, ${String(value)}`)
    } else {
      reply.header(name, value)
    }
  }
  reply.header('x-request-id', reply.request.id)
}

/** The header names a `Connection` header lists (undefined when it lists none). */
function connectionListed(connection: string | string[] | undefined): Set<string> | undefined {
  if (connection === undefined || CONNECTION_OPTIONS.test(String(connection))) return undefined
  const names = new Set<string>()
  for (const token of String(connection).split(',')) {
    const name = token.trim().toLowerCase()
    if (name !== '') names.add(name)
  }
  return names
}
