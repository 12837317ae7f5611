/** The sessions repository (sessions and refresh tokens), through the IssuerStore, on SQLite and PostgreSQL. */
import { randomUUID } from 'node:crypto'
import { newSession, onEachDialect, T0, user } from './fixtures.js'

await onEachDialect(async (t, { store }) => {
  t.test('refresh rotation is guarded against a concurrent refresh', async (t) => {
    const u = user(`${randomUUID()}@example.com`)
    await store.createUser(u)
    const sid = await newSession(store, u.id, 'h1')
    const found = await store.findRefreshToken('h1')
    t.equal(found!.session.id, sid)
    t.equal(found!.token.supersededAt, null)

    const rotation = { sessionId: sid, presentedHash: 'h1', now: T0 + 100, idleExpiresAt: T0 + 10_100 }
    const [a, b] = await Promise.all([
      store.rotateRefreshToken({ ...rotation, newTokenHash: 'h2a' }),
      store.rotateRefreshToken({ ...rotation, newTokenHash: 'h2b' }),
    ])
    t.same([a, b].sort(), [false, true], 'exactly one concurrent rotation wins')
    const winner = a ? 'h2a' : 'h2b'
    t.equal((await store.findRefreshToken(winner))!.token.supersededAt, null)
    t.equal(await store.findRefreshToken(a ? 'h2b' : 'h2a'), undefined, 'the loser changed nothing')
    t.equal((await store.findRefreshToken('h1'))!.token.supersededAt, T0 + 100)
    const session = await store.findSession(sid)
    t.equal(session!.lastUsedAt, T0 + 100)
    t.equal(session!.idleExpiresAt, T0 + 10_100)

    t.ok(await store.addRefreshToken(sid, 'sibling', T0 + 101, T0 + 10_101), 'a sibling joins a live session')
    t.ok(
      await store.rotateRefreshToken({
        sessionId: sid,
        presentedHash: 'sibling',
        newTokenHash: 'h3',
        now: T0 + 200,
        idleExpiresAt: T0 + 10_200,
      }),
    )
    t.equal(
      (await store.findRefreshToken(winner))!.token.supersededAt,
      T0 + 200,
      'rotation supersedes every current token',
    )
  })
})
