/**
 * The revocation events, through the IssuerStore, on SQLite and PostgreSQL: recorded alone or in the same
 * transaction as the session change they announce, read back in cursor order; and what only PostgreSQL adds
 * for several instances: events committed in cursor order, NOTIFY at commit.
 */
import { randomUUID } from 'node:crypto'
import pg from 'pg'
import t from 'tap'
import { openIssuerStore } from '../../../../services/issuer/store/issuer-store.js'
import { REVOCATION_CHANNEL } from '../../../../services/issuer/store/revocations.js'
import { postgresUnavailable, testDatabase } from '../../../helpers/postgres.js'
import { event, newSession, onEachDialect, T0, user } from './fixtures.js'

await onEachDialect(async (t, { store }) => {
  t.test('revocation: sessions, users, events in the same transaction', async (t) => {
    const u = user(`${randomUUID()}@example.com`)
    await store.createUser(u)
    const s1 = await newSession(store, u.id, `${u.id}-1`)
    const s2 = await newSession(store, u.id, `${u.id}-2`, T0 + 1)
    const s3 = await newSession(store, u.id, `${u.id}-3`, T0 + 2)
    const before = await store.listRevocations(0, 1000)
    const cursor = before.at(-1)?.cursor ?? 0

    t.ok(await store.revokeSession(s1, 'logout', T0 + 10, event({ sessionId: s1, userId: u.id })))
    t.notOk(
      await store.revokeSession(s1, 'logout', T0 + 11, event()),
      'a revoked session is not revoked twice',
    )
    t.equal((await store.findSession(s1))!.revokedReason, 'logout')
    t.notOk(
      await store.rotateRefreshToken({
        sessionId: s1,
        presentedHash: `${u.id}-1`,
        newTokenHash: 'x',
        now: T0 + 12,
        idleExpiresAt: T0 + 99,
      }),
      'a revoked session does not rotate',
    )
    t.equal(
      (await store.findRefreshToken(`${u.id}-1`))!.token.supersededAt,
      null,
      'and the guard was rolled back',
    )
    t.notOk(await store.addRefreshToken(s1, 'y', T0 + 12, T0 + 99))

    t.equal(
      await store.revokeUserSessions(u.id, 'logout_all', T0 + 20, event({ type: 'user', userId: u.id })),
      2,
    )
    t.same(
      (await store.listSessions(u.id)).map((s) => [s.id, s.revokedReason]),
      [
        [s3, 'logout_all'],
        [s2, 'logout_all'],
        [s1, 'logout'],
      ],
      'newest first',
    )
    await store.changePassword(u.id, '$argon2id$changed', T0 + 30, event({ type: 'user', userId: u.id }))
    t.equal((await store.findUserById(u.id))!.passwordHash, '$argon2id$changed')
    const keyEvent = await store.recordRevocation(
      event({ type: 'key', kid: 'k1', sessionId: null, userId: null }),
    )

    const events = await store.listRevocations(cursor, 100)
    t.same(
      events.map((e) => e.type),
      ['session', 'user', 'user', 'key'],
    )
    t.ok(
      events.every((e, i) => i === 0 || e.cursor > events[i - 1]!.cursor),
      'cursors increase',
    )
    t.equal(events.at(-1)!.cursor, keyEvent.cursor)
    t.equal(events.at(-1)!.kid, 'k1')
    t.same(await store.listRevocations(keyEvent.cursor, 100), [])
  })

  t.test('the latest cursor is the highest stored', async (t) => {
    const recorded = await store.recordRevocation(event({ expiresAt: T0 + 1_000_000 }))
    t.equal(await store.latestRevocationCursor(), recorded.cursor)
    await store.prune(T0 + 2_000_000, 0)
    t.equal(await store.latestRevocationCursor(), 0, 'nothing stored: 0')
    const next = await store.recordRevocation(event({ expiresAt: T0 + 1_000_000 }))
    t.ok(next.cursor > recorded.cursor, 'cursors never go back, even after pruning everything')
  })
})

t.test('on PostgreSQL, between instances', { skip: await postgresUnavailable() }, async (t) => {
  const db = await testDatabase(t)

  t.test('recording an event notifies listeners at commit, with the cursor', async (t) => {
    const store = await openIssuerStore(db.url)
    t.teardown(() => store.close())
    const listener = new pg.Client({ connectionString: db.url })
    await listener.connect()
    t.teardown(() => listener.end())
    await listener.query(`LISTEN ${REVOCATION_CHANNEL}`)
    const heard = new Promise<string | undefined>((resolve) =>
      listener.once('notification', (n) => resolve(n.payload)),
    )
    const recorded = await store.recordRevocation(event({ expiresAt: T0 + 1_000_000 }))
    t.equal(await heard, String(recorded.cursor))
  })

  t.test('events commit in cursor order: a reader that saw a cursor saw every smaller one', async (t) => {
    const store = await openIssuerStore(db.url)
    const other = await openIssuerStore(db.url)
    t.teardown(() => Promise.all([store.close(), other.close()]))
    const start = await store.latestRevocationCursor()

    // A writer holding the ordering lock keeps the next writer from taking a cursor until it commits.
    const holder = new pg.Client({ connectionString: db.url })
    await holder.connect()
    t.teardown(() => holder.end())
    await holder.query("select pg_advisory_lock(x'6b67'::int, 1)")
    let done = false
    const blocked = store.recordRevocation(event({ expiresAt: T0 + 1_000_000 })).then(() => (done = true))
    await new Promise((resolve) => setTimeout(resolve, 200))
    t.notOk(done, 'the insert waits for the writer before it')
    await holder.query("select pg_advisory_unlock(x'6b67'::int, 1)")
    await blocked

    // Many concurrent writers, one reader advancing its cursor as a feed does: nothing is skipped.
    const seen: number[] = []
    let cursor = start
    let writing = true
    const reader = (async () => {
      while (writing || (await store.listRevocations(cursor, 1)).length > 0) {
        for (const e of await store.listRevocations(cursor, 1000)) {
          seen.push(e.cursor)
          cursor = e.cursor
        }
      }
    })()
    const written = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        (i % 2 ? other : store).recordRevocation(event({ sessionId: `s${i}`, expiresAt: T0 + 1_000_000 })),
      ),
    )
    writing = false
    await reader
    const expected = [...written.map((e) => e.cursor)]
    t.same(
      seen.filter((c) => expected.includes(c)).sort((a, b) => a - b),
      expected.sort((a, b) => a - b),
      'every event was read by the cursor-following reader',
    )
  })
})
