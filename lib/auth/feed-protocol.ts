/**
 * The revocation feed's protocol, shared by the issuer (which records and serves revocations) and every
 * verifier (which subscribes): the one revocation event type, its wire form, the paths, the secret and the
 * timings both sides agree on. Events carry a monotonically increasing cursor; a subscriber resumes from the
 * last cursor it applied, so a dropped connection loses nothing.
 *
 * - `GET {feed}?after=<cursor>&limit=<n>` → `{ events: RecordedRevocationEvent[], cursor, more }` (catch-up)
 * - `GET {feed}/stream?after=<cursor>` → `text/event-stream`: every event after the cursor, then live ones
 *   (`event: revocation`, `id: <cursor>`), and `event: heartbeat` with `{ cursor, time }` every few seconds.
 *
 * Both require the verifiers' shared secret in `FEED_SECRET_HEADER`. A shared secret because verifiers are
 * the operator's own processes: nothing else is needed to deploy them, it rotates by accepting a list, and
 * it never leaves the internal network (the header sits in the identity namespace the gateway strips).
 */
export const FEED_PATH = '/revocations'
export const FEED_STREAM_PATH = '/revocations/stream'
export const FEED_SECRET_HEADER = 'x-keygate-feed-secret'
/** Default interval between heartbeats on the stream, in milliseconds. */
export const DEFAULT_FEED_HEARTBEAT_MS = 5_000
/**
 * Silence on the stream after which a subscriber presumes the connection dead and reopens it, in
 * milliseconds. An issuer's heartbeat interval must stay under it.
 */
export const DEFAULT_FEED_SILENCE_MS = 15_000
/** A subscriber's first wait before reconnecting after a failure, in milliseconds; doubled per failure. */
export const FEED_FIRST_BACKOFF_MS = 250
/** The longest a subscriber waits between reconnection attempts, in milliseconds. */
export const FEED_MAX_BACKOFF_MS = 10_000

/**
 * One revocation: every token of a session (`sid`), of a user issued before an instant (`sub`, `iat`), one
 * token (`jti`), or every token signed by a key (`kid`). The issuer records it, the feed carries it and a
 * verifier's RevocationSet applies it, all in this one shape. Times are milliseconds since the epoch:
 * `createdAt` is when it was recorded (subscribers measure their lag against it), `expiresAt` when every
 * token it affects has expired (it is forgotten then), `issuedBefore` the instant a user's tokens must
 * postdate.
 */
export type RevocationEvent =
  | { type: 'session'; sessionId: string; createdAt: number; expiresAt: number }
  | { type: 'user'; subject: string; issuedBefore: number; createdAt: number; expiresAt: number }
  | { type: 'token'; tokenId: string; createdAt: number; expiresAt: number }
  | { type: 'key'; kid: string; createdAt: number; expiresAt: number }

export type RevocationType = RevocationEvent['type']

/** A revocation as recorded, with its place in the feed: what the store returns and the feed carries. */
export type RecordedRevocationEvent = RevocationEvent & { cursor: number }

export interface FeedHeartbeat {
  /** Latest cursor the issuer has recorded. */
  cursor: number
  /** The issuer's clock, in milliseconds. */
  time: number
}

/** Checks and narrows an event received from the wire; anything malformed is refused, not guessed. */
export function parseWireEvent(value: unknown): RecordedRevocationEvent | undefined {
  if (typeof value !== 'object' || value === null) return undefined
  const e = value as Record<string, unknown>
  const num = (v: unknown) => typeof v === 'number' && Number.isFinite(v)
  const str = (v: unknown) => typeof v === 'string' && v.length > 0
  if (!num(e.cursor) || !num(e.expiresAt) || !num(e.createdAt)) return undefined
  switch (e.type) {
    case 'session':
      return str(e.sessionId) ? (e as RecordedRevocationEvent) : undefined
    case 'token':
      return str(e.tokenId) ? (e as RecordedRevocationEvent) : undefined
    case 'key':
      return str(e.kid) ? (e as RecordedRevocationEvent) : undefined
    case 'user':
      return str(e.subject) && num(e.issuedBefore) ? (e as RecordedRevocationEvent) : undefined
    default:
      return undefined
  }
}
