/**
 * The revocation feed (lib/auth/feed-protocol.ts): `GET /revocations` (catch-up read, paged) and
 * `GET /revocations/stream` (server-sent events). Verifiers authenticate with the shared feed secret in
 * `x-keygate-feed-secret`, not a Bearer token: they are the operator's own processes, not users, and must
 * reach the feed before they hold any token.
 */
import type { FastifyInstance } from 'fastify'
import { FEED_PATH, FEED_SECRET_HEADER, FEED_STREAM_PATH } from '@keygate/fastify-auth'
import { KeygateError, sendError } from '../../../lib/errors.js'
import type { FeedSecrets } from '../feed/feed-secrets.js'
import type { RevocationStreams } from '../feed/revocation-streams.js'
import type { IssuerStore } from '../store/types.js'

export const DEFAULT_FEED_PAGE_SIZE = 500
export const MAX_FEED_PAGE_SIZE = 1000
/** Seconds a verifier refused for lack of stream capacity waits before retrying. */
const STREAMS_BUSY_RETRY_AFTER_S = 5

export interface FeedRoutesOptions {
  store: IssuerStore
  secrets: FeedSecrets
  streams: RevocationStreams
}

/** The feed secret, not the Bearer plugin, guards these routes. */
const NO_BEARER = { auth: { mode: 'none' } } as const
const Cursor = { type: 'string', pattern: '^[0-9]{1,15}$' } as const

/** One recorded revocation (lib/auth/feed-protocol.ts): the fields beside `type` depend on it. */
const RevocationEventView = {
  type: 'object',
  required: ['type', 'cursor', 'createdAt', 'expiresAt'],
  additionalProperties: true,
  properties: {
    type: { type: 'string', enum: ['session', 'user', 'token', 'key'] },
    cursor: { type: 'integer', description: "The event's place in the feed." },
    createdAt: { type: 'integer', description: 'When it was recorded, in ms since the epoch.' },
    expiresAt: { type: 'integer', description: 'When every token it affects has expired, in ms.' },
    sessionId: { type: 'string', description: "`session`: the session's tokens are revoked." },
    subject: { type: 'string', description: "`user`: the user's tokens issued before issuedBefore." },
    issuedBefore: { type: 'integer', description: '`user`: in ms since the epoch.' },
    tokenId: { type: 'string', description: '`token`: the `jti` of the one token revoked.' },
    kid: { type: 'string', description: '`key`: every token signed by the key is revoked.' },
  },
} as const
const FeedPage = {
  type: 'object',
  required: ['events', 'cursor', 'more'],
  properties: {
    events: { type: 'array', items: RevocationEventView },
    cursor: { type: 'integer', description: 'The cursor to ask the next page `after`.' },
    more: { type: 'boolean', description: 'Whether another page follows.' },
  },
} as const
/** The stream is not JSON: server-sent events, each a revocation or a heartbeat, until the client leaves. */
const EventStream = {
  description:
    'Server-sent events until the client leaves: `event: revocation` (`id:` its cursor, `data:` the event ' +
    'as JSON, as in GET /revocations) and `event: heartbeat` (`data:` `{"cursor","time"}`: the latest ' +
    "cursor and the issuer's clock)",
  content: { 'text/event-stream': { schema: { type: 'string' } } },
} as const

/** Registers the feed routes (an encapsulated plugin: its secret check applies to them alone). */
export async function feedRoutes(app: FastifyInstance, options: FeedRoutesOptions): Promise<void> {
  const { store, secrets, streams } = options

  app.addHook('onRequest', async (request) => {
    if (!secrets.accepts(request.headers[FEED_SECRET_HEADER])) {
      throw new KeygateError('KG_FEED_UNAUTHORIZED', {
        headers: { 'www-authenticate': 'KeygateFeedSecret realm="keygate"' },
      })
    }
  })

  app.get<{ Querystring: { after?: string; limit?: string } }>(
    FEED_PATH,
    {
      config: NO_BEARER,
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { after: Cursor, limit: { type: 'string', pattern: '^[0-9]{1,4}$' } },
        },
        response: { 200: FeedPage },
      },
    },
    async (request, reply) => {
      const after = Number(request.query.after ?? 0)
      const limit = Math.max(
        1,
        Math.min(Number(request.query.limit ?? DEFAULT_FEED_PAGE_SIZE), MAX_FEED_PAGE_SIZE),
      )
      // One more than asked tells whether another page follows.
      const events = await store.listRevocations(after, limit + 1)
      const page = events.slice(0, limit)
      reply.header('cache-control', 'no-store')
      return {
        events: page,
        cursor: page.length > 0 ? page[page.length - 1]!.cursor : after,
        more: events.length > limit,
      }
    },
  )

  app.get<{ Querystring: { after?: string } }>(
    FEED_STREAM_PATH,
    {
      config: NO_BEARER,
      schema: {
        querystring: { type: 'object', additionalProperties: false, properties: { after: Cursor } },
        response: { 200: EventStream },
      },
    },
    async (request, reply) => {
      if (streams.full) {
        return sendError(
          reply,
          new KeygateError('KG_FEED_BUSY', {
            headers: { 'retry-after': String(STREAMS_BUSY_RETRY_AFTER_S) },
          }),
        )
      }
      // A standard EventSource resumes with Last-Event-ID (the last `id:` it saw) instead of `after`.
      const lastEventId = request.headers['last-event-id']
      const after =
        request.query.after !== undefined
          ? Number(request.query.after)
          : typeof lastEventId === 'string' && /^[0-9]{1,15}$/.test(lastEventId)
            ? Number(lastEventId)
            : 0
      reply.hijack()
      await streams.serve(reply.raw, after, request.log)
    },
  )
}
