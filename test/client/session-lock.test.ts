import t from 'tap'
import { SessionLock } from '../../client/session-lock.js'

const tick = () => new Promise((resolve) => setImmediate(resolve))

t.test(
  'without Web Locks, operations of one tab run one at a time, in order, failures included',
  async (t) => {
    const lock = new SessionLock('keygate:test', undefined)
    t.equal(lock.crossTab, false)
    const log: string[] = []
    let running = 0
    const operation =
      (name: string, fail = false) =>
      async () => {
        running++
        t.equal(running, 1, `${name} runs alone`)
        log.push(`start ${name}`)
        await tick()
        log.push(`end ${name}`)
        running--
        if (fail) throw new Error(name)
        return name
      }
    const results = await Promise.allSettled([
      lock.run(operation('a')),
      lock.run(operation('b', true)),
      lock.run(operation('c')),
    ])
    t.same(log, ['start a', 'end a', 'start b', 'end b', 'start c', 'end c'])
    t.match(results, [
      { status: 'fulfilled', value: 'a' },
      { status: 'rejected', reason: { message: 'b' } },
      { status: 'fulfilled', value: 'c' },
    ])
  },
)

t.test('with Web Locks, the named lock is requested for each operation', async (t) => {
  const names: string[] = []
  const lock = new SessionLock('keygate:https://gw/', {
    request: (name, callback) => {
      names.push(name)
      return callback()
    },
  })
  t.equal(lock.crossTab, true)
  t.equal(await lock.run(async () => 'done'), 'done')
  t.same(names, ['keygate:https://gw/'])
})
