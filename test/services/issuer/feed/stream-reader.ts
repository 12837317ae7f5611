/**
 * A revocation-stream reader for tests: opens `GET /revocations/stream` over real HTTP and keeps every
 * server-sent event in arrival order, with the time it arrived, so tests can check order and delay.
 */
import { createParser } from 'eventsource-parser'
import { type Dispatcher, request } from 'undici'
import {
  FEED_SECRET_HEADER,
  type FeedHeartbeat,
  type RecordedRevocationEvent,
} from '../../../../lib/auth/feed-protocol.js'

export type StreamMessage =
  | { event: 'revocation'; id: string | undefined; data: RecordedRevocationEvent; at: number }
  | { event: 'heartbeat'; data: FeedHeartbeat; at: number }

export interface StreamReader {
  status: number
  messages: StreamMessage[]
  /** Resolves when the server ends the stream (or it breaks). */
  ended: Promise<void>
  /** Waits for the first message (from `from` on) that matches, or fails after `timeoutMs`. */
  waitFor(match: (m: StreamMessage) => boolean, timeoutMs?: number, from?: number): Promise<StreamMessage>
  revocations(): RecordedRevocationEvent[]
  close(): void
}

/** Opens a stream on `base` (the issuer's origin) from `after`; `headers` replace the secret header. */
export async function openStream(
  base: string,
  secret: string,
  options: { after?: number; headers?: Record<string, string>; dispatcher?: Dispatcher } = {},
): Promise<StreamReader> {
  const abort = new AbortController()
  const query = options.after === undefined ? '' : `?after=${options.after}`
  const res = await request(`${base}/revocations/stream${query}`, {
    headers: options.headers ?? { [FEED_SECRET_HEADER]: secret, accept: 'text/event-stream' },
    signal: abort.signal,
    ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
  })
  const messages: StreamMessage[] = []
  const waiters = new Set<() => void>()
  const parser = createParser({
    onEvent: (m) => {
      const at = Date.now()
      if (m.event === 'revocation')
        messages.push({ event: 'revocation', id: m.id, data: JSON.parse(m.data), at })
      else if (m.event === 'heartbeat') messages.push({ event: 'heartbeat', data: JSON.parse(m.data), at })
      for (const wake of waiters) wake()
    },
  })
  const ended = (async () => {
    try {
      for await (const chunk of res.body) parser.feed((chunk as Buffer).toString('utf8'))
    } catch {
      // Aborted by close(), or cut by the server.
    }
  })()
  const reader: StreamReader = {
    status: res.statusCode,
    messages,
    ended,
    waitFor(match, timeoutMs = 2000, from = 0) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = messages.slice(from).find(match)
          if (!found) return false
          cleanup()
          resolve(found)
          return true
        }
        const timer = setTimeout(() => {
          cleanup()
          reject(
            new Error(`no matching stream message within ${timeoutMs} ms; got ${JSON.stringify(messages)}`),
          )
        }, timeoutMs)
        const cleanup = () => {
          clearTimeout(timer)
          waiters.delete(wake)
        }
        const wake = () => void check()
        if (!check()) waiters.add(wake)
      })
    },
    revocations: () => messages.flatMap((m) => (m.event === 'revocation' ? [m.data] : [])),
    close: () => abort.abort(),
  }
  return reader
}
