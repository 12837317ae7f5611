/** Exclusive tasks, through the IssuerStore: one at a time across instances on PostgreSQL, always on SQLite. */
import { onEachDialect } from './fixtures.js'

await onEachDialect(async (t, { store, open, shared }) => {
  t.test('an exclusive task runs once at a time across handles that share the database', async (t) => {
    const other = await open()
    t.teardown(() => other.close())
    let release!: () => void
    const held = new Promise<void>((resolve) => (release = resolve))
    let started!: () => void
    const running = new Promise<void>((resolve) => (started = resolve))
    const first = store.runExclusively('key-maintenance', async () => {
      started()
      await held
    })
    await running
    let secondRan = false
    const second = await other.runExclusively('key-maintenance', async () => {
      secondRan = true
    })
    release()
    t.equal(await first, true)
    t.equal(second, !shared, shared ? 'skipped while the first holds the lock' : 'a lone process always runs')
    t.equal(secondRan, !shared)
    t.equal(
      await other.runExclusively('key-maintenance', async () => {}),
      true,
      'and runs once the lock is free',
    )
  })
})
