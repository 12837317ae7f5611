/**
 * What the client receives of an upstream's response headers. The request side is upstream-request.ts; this
 * stays beside the proxy's relay (proxy.ts), the one place that writes an upstream answer onto the reply.
 */
import type { FastifyReply } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import { connectionListed, HOP_BY_HOP } from './hop-by-hop.js'

const DROPPED_RESPONSE_HEADERS: ReadonlySet<string> = new Set([...HOP_BY_HOP, 'x-request-id'])

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
