/**
 * The open revocation streams of one instance, over an event-table double and a real fan-out, served on a
 * plain HTTP server: backlog, then heartbeat, then live events, each event once and in order (also when live
 * events arrive while the backlog is read); paging; heartbeats; the stream limit; shutdown; and what happens
 * to a subscriber that stops reading or a backlog that cannot be read.
 */
import { EventEmitter } from 'node:events'
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import type { RecordedRevocationEvent } from '../../../../lib/auth/feed-protocol.js'
import { RevocationFanout } from '../../../../services/issuer/feed/revocation-fanout.js'
import {
  BACKLOG_PAGE_SIZE,
  MAX_UNSENT_BYTES,
  RevocationStreams,
} from '../../../../services/issuer/feed/revocation-streams.js'
import type { IssuerStore } from '../../../../services/issuer/store/types.js'
import { captureLogs } from '../../../helpers/logs.js'
import { openStream, type StreamMessage } from './stream-reader.js'

const NOW = 1_800_000_000_000

/** The event table alone, with a hook the next read awaits before it returns (after its query). */
function eventTable() {
  const events: RecordedRevocationEvent[] = []
  const table = {
    events,
    failNext: false,
    duringRead: undefined as (() => Promise<void>) | undefined,
    record(): RecordedRevocationEvent {
      const cursor = events.length + 1
      const e: RecordedRevocationEvent = {
        type: 'session',
        sessionId: `s${cursor}`,
        createdAt: NOW,
        expiresAt: NOW + 60_000,
        cursor,
      }
      events.push(e)
      return e
    },
    store: {
      latestRevocationCursor: async () => events.at(-1)?.cursor ?? 0,
      listRevocations: async (after: number, limit: number) => {
        if (table.failNext) {
          table.failNext = false
          throw new Error('database went away')
        }
        const page = events.filter((e) => e.cursor > after).slice(0, limit)
        const during = table.duringRead
        table.duringRead = undefined
        await during?.()
        return page
      },
    } as unknown as IssuerStore,
  }
  return table
}

/** Streams over a started fan-out, served on a loopback port; all torn down with the test. */
async function setup(t: Test, options: { maxStreams?: number; heartbeatMs?: number } = {}) {
  const table = eventTable()
  const logs = captureLogs()
  const fanout = new RevocationFanout({ store: table.store, log: logs.logger, pollIntervalMs: 60_000 })
  await fanout.start()
  const streams = new RevocationStreams({
    store: table.store,
    fanout,
    log: logs.logger,
    now: () => NOW,
    heartbeatMs: options.heartbeatMs ?? 60_000,
    maxStreams: options.maxStreams ?? 10,
  })
  const server = createServer((req, res) => {
    const after = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('after') ?? 0)
    void streams.serve(res, after)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  t.teardown(async () => {
    streams.closeAll()
    streams.stop()
    await fanout.stop()
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  const open = async (after?: number) => {
    const reader = await openStream(base, 'unused', after === undefined ? {} : { after })
    t.teardown(() => reader.close())
    return reader
  }
  return { table, fanout, streams, logs, open }
}

const isBeat = (m: StreamMessage) => m.event === 'heartbeat'
const summary = (messages: StreamMessage[]) =>
  messages.map((m) => (m.event === 'revocation' ? m.data.cursor : `beat@${m.data.cursor}`))

async function until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

t.test('the backlog after the cursor, then a heartbeat, then live events, as recorded', async (t) => {
  const { table, fanout, open } = await setup(t)
  for (let i = 0; i < 3; i++) table.record()
  const reader = await open(1)
  t.equal(reader.status, 200)
  await reader.waitFor(isBeat)
  t.same(summary(reader.messages), [2, 3, 'beat@3'], 'the heartbeat follows the backlog')

  const live = table.record()
  await fanout.wake()
  const message = await reader.waitFor((m) => m.event === 'revocation' && m.data.cursor === 4)
  t.match(message, { id: '4' })
  t.same(message.event === 'revocation' && message.data, live, 'the event travels as it was recorded')
  t.same(summary(reader.messages), [2, 3, 'beat@3', 4])
})

t.test('live events that arrive while the backlog is read are sent after it, once each', async (t) => {
  const { table, fanout, open } = await setup(t)
  // Recorded after the fan-out started, so it delivers them too: the backlog read and the fan-out overlap.
  for (let i = 0; i < 3; i++) table.record()
  table.duringRead = async () => {
    table.record()
    await fanout.wake()
  }
  const reader = await open(0)
  await reader.waitFor(isBeat)
  t.same(summary(reader.messages), [1, 2, 3, 4, 'beat@4'], 'no repeat, no gap, the heartbeat last')
})

t.test('a long backlog is read page by page', async (t) => {
  const { table, open } = await setup(t)
  const total = BACKLOG_PAGE_SIZE * 2 + 7
  for (let i = 0; i < total; i++) table.record()
  const reader = await open(0)
  await reader.waitFor(isBeat, 10_000)
  const cursors = reader.revocations().map((e) => e.cursor)
  t.equal(cursors.length, total)
  t.ok(
    cursors.every((c, i) => c === i + 1),
    'in order',
  )
})

t.test('heartbeats every interval carry the latest cursor', async (t) => {
  const { table, fanout, open } = await setup(t, { heartbeatMs: 50 })
  const reader = await open()
  await reader.waitFor(isBeat)
  table.record()
  await fanout.wake()
  const from = reader.messages.length
  const beat = await reader.waitFor(isBeat, 5000, from)
  t.same(beat.data, { cursor: 1, time: NOW })
})

t.test('a limited number of streams; a closed one frees its place; shutdown ends them', async (t) => {
  const { streams, open } = await setup(t, { maxStreams: 2 })
  const first = await open()
  const second = await open()
  await until(() => streams.open === 2, 'two open streams')
  t.ok(streams.full, 'full at the limit')
  first.close()
  await until(() => streams.open === 1, 'the closed stream to go')
  t.notOk(streams.full)
  streams.closeAll()
  await second.ended
  t.pass('the server ended the open stream')
  t.equal(streams.open, 0)
  t.ok(streams.full, 'no new stream while shutting down')
})

t.test('a backlog that cannot be read cuts the stream (the subscriber reconnects)', async (t) => {
  const { table, logs, open } = await setup(t)
  table.record()
  table.failNext = true
  const reader = await open(0)
  await reader.ended
  t.same(reader.messages, [], 'nothing was sent')
  t.equal(logs.find('reading the revocation backlog failed; the subscriber will reconnect').length, 1)
})

/** Just what RevocationStreams uses of a response; the test decides how much is waiting unsent. */
class StuckResponse extends EventEmitter {
  writableLength = 0
  writableEnded = false
  destroyed = false
  written: string[] = []
  writeHead() {
    return this
  }
  flushHeaders() {}
  write(chunk: string) {
    this.written.push(chunk)
    return true
  }
  end() {
    this.writableEnded = true
  }
  destroy() {
    this.destroyed = true
    this.emit('close')
  }
}

t.test('a subscriber that stops reading is cut off past the unsent limit', async (t) => {
  const { table, fanout, streams, logs } = await setup(t)
  const res = new StuckResponse()
  await streams.serve(res as unknown as ServerResponse, 0)
  t.equal(streams.open, 1)
  t.match(res.written, [/^event: heartbeat/])

  res.writableLength = MAX_UNSENT_BYTES
  table.record()
  await fanout.wake()
  t.notOk(res.destroyed, 'at the limit it is still served')
  res.writableLength = MAX_UNSENT_BYTES + 1
  table.record()
  await fanout.wake()
  t.ok(res.destroyed, 'past it, the connection is cut')
  t.equal(streams.open, 0)
  t.equal(logs.find('revocation subscriber is not reading; disconnected').length, 1)
})
