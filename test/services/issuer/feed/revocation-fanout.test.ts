/**
 * The fan-out over a store double: it starts from the latest cursor, delivers in order and once, coalesces
 * wake-ups without missing an event recorded during a read, pages, and survives a failing read.
 */
import t from 'tap'
import { FANOUT_PAGE_SIZE, RevocationFanout } from '../../../../services/issuer/feed/revocation-fanout.js'
import type { RecordedRevocationEvent } from '../../../../lib/auth/feed-protocol.js'
import type { IssuerStore } from '../../../../services/issuer/store/types.js'
import { captureLogs } from '../../../helpers/logs.js'

/** Just the event table, with a hook to run something in the middle of a read. */
function eventTable() {
  const events: RecordedRevocationEvent[] = []
  const table = {
    events,
    reads: 0,
    failNext: false,
    duringRead: undefined as (() => void) | undefined,
    record(): RecordedRevocationEvent {
      const e: RecordedRevocationEvent = {
        type: 'token',
        tokenId: `j${events.length + 1}`,
        createdAt: 1,
        expiresAt: 2,
        cursor: events.length + 1,
      }
      events.push(e)
      return e
    },
    store: {
      latestRevocationCursor: async () => events.at(-1)?.cursor ?? 0,
      listRevocations: async (after: number, limit: number) => {
        table.reads++
        if (table.failNext) {
          table.failNext = false
          throw new Error('database went away')
        }
        const page = events.filter((e) => e.cursor > after).slice(0, limit)
        const during = table.duringRead
        table.duringRead = undefined
        await new Promise((resolve) => setImmediate(resolve))
        during?.()
        return page
      },
    } as unknown as IssuerStore,
  }
  return table
}

function fanoutOver(table: ReturnType<typeof eventTable>) {
  const logs = captureLogs()
  const fanout = new RevocationFanout({ store: table.store, log: logs.logger, pollIntervalMs: 60_000 })
  const delivered: number[] = []
  fanout.subscribe((events) => delivered.push(...events.map((e) => e.cursor)))
  return { fanout, delivered, logs }
}

t.test('starts after what is stored and delivers each new event once, in order', async (t) => {
  const table = eventTable()
  table.record()
  const { fanout, delivered } = fanoutOver(table)
  await fanout.start()
  t.teardown(() => fanout.stop())
  t.equal(fanout.cursor, 1, 'history is served from the table, not replayed')
  table.record()
  table.record()
  await fanout.wake()
  await fanout.wake()
  t.same(delivered, [2, 3])
  t.equal(fanout.cursor, 3)
})

t.test(
  'wake-ups during a read queue one more read, so an event committed meanwhile is not missed',
  async (t) => {
    const table = eventTable()
    const { fanout, delivered } = fanoutOver(table)
    await fanout.start()
    t.teardown(() => fanout.stop())
    table.record()
    let lateWake: Promise<void> | undefined
    // Committed after the read's query, but before it returned: only another read can see it.
    table.duringRead = () => {
      table.record()
      lateWake = fanout.wake()
    }
    const readsBefore = table.reads
    const first = fanout.wake()
    const joined = fanout.wake()
    t.equal(joined, first, 'a wake-up before the read starts joins it')
    await first
    await lateWake
    t.same(delivered, [1, 2])
    t.equal(table.reads - readsBefore, 2, 'three wake-ups, two reads')
  },
)

t.test('reads page after page', async (t) => {
  const table = eventTable()
  const { fanout, delivered } = fanoutOver(table)
  await fanout.start()
  t.teardown(() => fanout.stop())
  for (let i = 0; i < FANOUT_PAGE_SIZE + 3; i++) table.record()
  await fanout.wake()
  t.equal(delivered.length, FANOUT_PAGE_SIZE + 3)
  t.same(delivered.slice(-2), [FANOUT_PAGE_SIZE + 2, FANOUT_PAGE_SIZE + 3])
})

t.test(
  'a failing read is logged once and retried from the same cursor; a failing listener is contained',
  async (t) => {
    const table = eventTable()
    const { fanout, delivered, logs } = fanoutOver(table)
    fanout.subscribe(() => {
      throw new Error('listener bug')
    })
    await fanout.start()
    t.teardown(() => fanout.stop())
    table.record()
    table.failNext = true
    await fanout.wake()
    t.same(delivered, [])
    t.equal(logs.find('reading revocation events failed').length, 1)
    await fanout.wake()
    t.same(delivered, [1], 'delivered on the next wake-up')
    t.equal(
      logs.find('a revocation listener failed').length,
      1,
      'the broken listener did not stop the others',
    )
    t.equal(logs.find('reading revocation events works again').length, 1)
  },
)

t.test('after stop, wake-ups read nothing', async (t) => {
  const table = eventTable()
  const { fanout, delivered } = fanoutOver(table)
  await fanout.start()
  await fanout.stop()
  table.record()
  await fanout.wake()
  t.same(delivered, [])
})
