/**
 * A stand-in revocation feed speaking the wire protocol of lib/auth/feed-protocol.ts over real HTTP, so the
 * verifier's subscription can be tested against drops, silences and bad secrets without an issuer.
 */
import type { AddressInfo } from 'node:net'
import type { ServerResponse } from 'node:http'
import Fastify from 'fastify'
import {
  FEED_SECRET_HEADER,
  type RecordedRevocationEvent,
  type RevocationEvent,
} from '../../lib/auth/feed-protocol.js'

/** An event to publish: the server stamps `createdAt` (and the cursor) when it publishes it. */
type Publishable = RevocationEvent extends infer E
  ? E extends unknown
    ? Omit<E, 'createdAt'>
    : never
  : never

export interface FeedServer {
  /** Base URL of the feed (what a TrustedIssuer's `revocationFeed` names). */
  url: string
  secret: string
  events: RecordedRevocationEvent[]
  /** Streams currently open. */
  readonly streams: number
  /** Stream requests received (each reconnection counts). */
  connections: number
  /** When true, the server stops sending heartbeats (a silent, half-dead connection). */
  silent: boolean
  /** Records an event and pushes it to every open stream. */
  publish(event: Publishable): RecordedRevocationEvent
  /** Cuts every open stream (the verifier must reconnect and resume from its cursor). */
  dropStreams(): void
  close(): Promise<void>
}

export async function startFeedServer(
  options: { heartbeatMs?: number; secret?: string } = {},
): Promise<FeedServer> {
  const app = Fastify({ logger: false, forceCloseConnections: true })
  const open = new Set<ServerResponse>()
  const heartbeatMs = options.heartbeatMs ?? 100
  const write = (res: ServerResponse, e: RecordedRevocationEvent) =>
    res.write(`event: revocation\nid: ${e.cursor}\ndata: ${JSON.stringify(e)}\n\n`)
  const server: FeedServer = {
    url: '',
    secret: options.secret ?? 'feed-secret-for-tests',
    events: [],
    get streams() {
      return open.size
    },
    connections: 0,
    silent: false,
    publish(event) {
      const wire = {
        ...event,
        cursor: server.events.length + 1,
        createdAt: Date.now(),
      } as RecordedRevocationEvent
      server.events.push(wire)
      for (const res of open) write(res, wire)
      return wire
    },
    dropStreams() {
      for (const res of open) res.destroy()
      open.clear()
    },
    close: () => app.close(),
  }
  app.get('/revocations/stream', (request, reply) => {
    server.connections++
    if (request.headers[FEED_SECRET_HEADER] !== server.secret)
      return reply.code(401).send({ code: 'KG_FEED_UNAUTHORIZED' })
    const after = Number((request.query as { after?: string }).after ?? 0)
    const res = reply.raw
    reply.hijack()
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' })
    for (const e of server.events) if (e.cursor > after) write(res, e)
    const beat = () => {
      if (!server.silent)
        res.write(
          `event: heartbeat\ndata: ${JSON.stringify({ cursor: server.events.length, time: Date.now() })}\n\n`,
        )
    }
    beat()
    const timer = setInterval(beat, heartbeatMs)
    open.add(res)
    res.on('close', () => {
      clearInterval(timer)
      open.delete(res)
    })
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  server.url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/revocations`
  return server
}
