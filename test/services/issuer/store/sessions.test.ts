/** The sessions repository (sessions and refresh tokens), through the IssuerStore, on SQLite and PostgreSQL. */
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { openIssuerStore } from '../../../../services/issuer/store/issuer-store.js'
import { tempDir } from '../fixtures.js'
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

t.test("rotation finds the current tokens without walking the session's superseded ones", async (t) => {
  // A session keeps every token it had, one per refresh: finding its current ones by session id alone
  // walked all of them, so each refresh of a month-old session cost more than the one before. The query
  // is the shape of `supersedeCurrent` in services/issuer/store/sessions.ts.
  const file = join(tempDir(t), 'issuer.db')
  await (await openIssuerStore(file)).close()
  const db = new Database(file, { readonly: true })
  t.teardown(() => db.close())
  const plan = db
    .prepare(
      'explain query plan update refresh_tokens set superseded_at = ? where session_id = ? and superseded_at is null',
    )
    .all(0, 'session')
    .map((row) => (row as { detail: string }).detail)
    .join('; ')
  t.match(plan, /USING INDEX refresh_tokens_current\b/, plan)
})
