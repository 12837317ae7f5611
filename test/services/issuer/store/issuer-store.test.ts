/** What the IssuerStore does over the whole database (pruning, ping), on SQLite and PostgreSQL. */
import { randomUUID } from 'node:crypto'
import { event, newSession, onEachDialect, T0, user } from './fixtures.js'

await onEachDialect(async (t, { store }) => {
  t.test('prune drops expired sessions with their tokens, and expired events', async (t) => {
    const u = user(`${randomUUID()}@example.com`)
    await store.createUser(u)
    const live = await newSession(store, u.id, `${u.id}-live`, T0 + 1_000_000)
    const idle = await newSession(store, u.id, `${u.id}-idle`)
    await store.recordRevocation(event({ expiresAt: T0 + 1 }))
    const result = await store.prune(T0 + 20_000, 5_000)
    t.ok(result.sessions >= 1)
    t.ok(result.events >= 1)
    t.equal(await store.findSession(idle), undefined)
    t.equal(await store.findRefreshToken(`${u.id}-idle`), undefined, 'its tokens went with it')
    t.ok(await store.findSession(live))
    t.ok((await store.listRevocations(0, 1000)).every((e) => e.expiresAt > T0 + 20_000))
    t.ok(await store.ping())
  })
})
