/**
 * The revocation feed's wire format, shared by the issuer (which serves it) and every verifier (which
 * subscribes). Events carry a monotonically increasing cursor; a subscriber resumes from the last cursor
 * it applied, so a dropped connection loses nothing.
 *
 * - `GET {feed}?after=<cursor>&limit=<n>` → `{ events: WireRevocationEvent[], cursor, more }` (catch-up read)
 * - `GET {feed}/stream?after=<cursor>` → `text/event-stream`: every event after the cursor, then live ones
 *   (`event: revocation`, `id: <cursor>`), and `event: heartbeat` with `{ cursor, time }` every few seconds.
 *
 * Both require the verifiers' shared secret in `FEED_SECRET_HEADER`. A shared secret because verifiers are
 * the operator's own processes: nothing else is needed to deploy them, it rotates by accepting a list, and
 * it never leaves the internal network (the header sits in the identity namespace the gateway strips).
 */
import type { RevocationEvent } from './revocation-set.js'

export const FEED_PATH = '/revocations'
export const FEED_STREAM_PATH = '/revocations/stream'
export const FEED_SECRET_HEADER = 'x-keygate-feed-secret'
/** Default interval between heartbeats on the stream, in milliseconds. */
export const DEFAULT_FEED_HEARTBEAT_MS = 5_000

/** One revocation as it travels; times are milliseconds since the epoch. */
export type WireRevocationEvent = RevocationEvent & {
  cursor: number
  /** When the revocation was recorded (subscribers measure their lag against it). */
  createdAt: number
}

export interface FeedHeartbeat {
  /** Latest cursor the issuer has recorded. */
  cursor: number
  /** The issuer's clock, in milliseconds. */
  time: number
}

/** Checks and narrows an event received from the wire; anything malformed is refused, not guessed. */
export function parseWireEvent(value: unknown): WireRevocationEvent | undefined {
  if (typeof value !== 'object' || value === null) return undefined
  const e = value as Record<string, unknown>
  const num = (v: unknown) => typeof v === 'number' && Number.isFinite(v)
  const str = (v: unknown) => typeof v === 'string' && v.length > 0
  if (!num(e.cursor) || !num(e.expiresAt) || !num(e.createdAt)) return undefined
  switch (e.type) {
    case 'session':
      return str(e.sessionId) ? (e as WireRevocationEvent) : undefined
    case 'token':
      return str(e.tokenId) ? (e as WireRevocationEvent) : undefined
    case 'key':
      return str(e.kid) ? (e as WireRevocationEvent) : undefined
    case 'user':
      return str(e.subject) && num(e.issuedBefore) ? (e as WireRevocationEvent) : undefined
    default:
      return undefined
  }
}
