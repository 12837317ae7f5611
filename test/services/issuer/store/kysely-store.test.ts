/**
 * The store's contract, run on SQLite and on PostgreSQL (a throwaway database per run; skipped with a
 * message when PostgreSQL is unreachable, unless KEYGATE_REQUIRE_POSTGRES=1), and what only PostgreSQL
 * adds for several instances: events committed in cursor order, NOTIFY at commit, advisory locks.
 */
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import pg from 'pg'
import t, { type Test } from 'tap'
import { openIssuerStore, REVOCATION_CHANNEL } from '../../../../services/issuer/store/kysely-store.js'
import {
  EmailTakenError,
  type IssuerStore,
  type RevocationEvent,
  type SealedKeyRecord,
  type UserRecord,
} from '../../../../services/issuer/store/types.js'
import { postgresUnavailable, testDatabase } from '../../../helpers/postgres.js'
import { tempDir } from '../fixtures.js'

const T0 = 1_800_000_000_000

function user(email: string, roles = ['user']): UserRecord {
  return { id: randomUUID(), email, passwordHash: '$argon2id$fake', roles, createdAt: T0, updatedAt: T0 }
}

function event(overrides: Partial<RevocationEvent> = {}): RevocationEvent {
  return {
    type: 'session',
    sessionId: 's',
    userId: 'u',
    issuedBefore: T0,
    createdAt: T0,
    expiresAt: T0 + 1000,
    ...overrides,
  }
}

async function newSession(store: IssuerStore, userId: string, tokenHash: string, at = T0) {
  const id = randomUUID()
  await store.createSession(
    {
      id,
      userId,
      clientId: 'web',
      csrfHash: 'csrf',
      createdAt: at,
      idleExpiresAt: at + 10_000,
      absoluteExpiresAt: at + 50_000,
    },
    tokenHash,
  )
  return id
}

function sealedKey(kid: string, overrides: Partial<SealedKeyRecord> = {}): SealedKeyRecord {
  return {
    kid,
    state: 'next',
    createdAt: T0,
    activatedAt: null,
    retiredAt: null,
    revokedAt: null,
    removeAt: null,
    sealedPrivateKey: `sealed-${kid}`,
    ...overrides,
  }
}

/**
 * `open` opens another handle on the same database each call (a second handle stands for a second
 * process); `shared` says whether handles coordinate like several instances (PostgreSQL) or not (SQLite).
 */
async function contract(t: Test, open: () => Promise<IssuerStore>, shared: boolean) {
  const store = await open()
  t.teardown(() => store.close())

  t.test('users: create, find, unique e-mail, roles, password', async (t) => {
    const alice = user('alice@example.com')
    await store.createUser(alice)
    t.same(await store.findUserByEmail('alice@example.com'), alice)
    t.same(await store.findUserById(alice.id), alice)
    t.equal(await store.findUserByEmail('nobody@example.com'), undefined)
    await t.rejects(store.createUser(user('alice@example.com')), EmailTakenError)
    t.ok(await store.setUserRoles(alice.id, ['admin', 'user'], T0 + 5))
    t.same((await store.findUserById(alice.id))!.roles, ['admin', 'user'])
    t.equal((await store.findUserById(alice.id))!.updatedAt, T0 + 5, 'times come back as numbers')
    t.notOk(await store.setUserRoles(randomUUID(), ['x'], T0))
    t.ok(await store.setPasswordHash(alice.id, '$argon2id$new', T0 + 6))
    t.equal((await store.findUserById(alice.id))!.passwordHash, '$argon2id$new')
    await store.createUser({ ...user('bob@example.com'), createdAt: T0 + 1 })
    const page = await store.listUsers({ limit: 1, offset: 1 })
    t.same(
      page.map((u) => u.email),
      ['bob@example.com'],
    )
  })

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

  t.test('the latest cursor is the highest stored', async (t) => {
    const recorded = await store.recordRevocation(event({ expiresAt: T0 + 1_000_000 }))
    t.equal(await store.latestRevocationCursor(), recorded.cursor)
    await store.prune(T0 + 2_000_000, 0)
    t.equal(await store.latestRevocationCursor(), 0, 'nothing stored: 0')
    const next = await store.recordRevocation(event({ expiresAt: T0 + 1_000_000 }))
    t.ok(next.cursor > recorded.cursor, 'cursors never go back, even after pruning everything')
  })

  t.test('key set: replaced as a whole under its lock; the revision counts changes', async (t) => {
    t.same(await store.readKeySet(), { keys: [], revision: 0 }, 'empty before first start')
    const first = await store.updateKeySet(async (current) => ({
      keys: [...current.keys, sealedKey('a', { state: 'active', activatedAt: T0 }), sealedKey('b')],
      result: 'generated',
    }))
    t.equal(first.result, 'generated')
    t.equal(first.revision, 1)
    t.same(await store.readKeySet(), { keys: first.keys, revision: 1 }, 'every column comes back')
    t.equal(await store.keySetRevision(), 1)
    const unchanged = await store.updateKeySet(async () => ({ result: 'nothing to do' }))
    t.equal(unchanged.revision, 1, 'no change, no new revision')

    const other = await open()
    t.teardown(() => other.close())
    await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        // SQLite: one handle (a second one in the same process would wait on the lock synchronously).
        (i % 2 && shared ? other : store).updateKeySet(async (current) => {
          await new Promise((resolve) => setTimeout(resolve, 5))
          return {
            keys: current.keys.map((k) => ({ ...k, createdAt: k.createdAt + 1 })),
            result: undefined,
          }
        }),
      ),
    )
    const after = await other.readKeySet()
    t.same(
      after.keys.map((k) => k.createdAt),
      [T0 + 6, T0 + 6],
      'six concurrent read-modify-writes: none lost',
    )
    t.equal(after.revision, 7)
    await store.updateKeySet(async () => ({
      keys: [sealedKey('c', { state: 'revoked', revokedAt: 5, removeAt: 9 })],
      result: 0,
    }))
    t.same(
      (await store.readKeySet()).keys.map((k) => [k.kid, k.state, k.revokedAt, k.removeAt]),
      [['c', 'revoked', 5, 9]],
      'keys left out are deleted',
    )
  })

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
}

t.test('on SQLite', async (t) => {
  const dir = tempDir(t)
  await contract(t, () => openIssuerStore(join(dir, 'nested', 'issuer.db')), false)
})

t.test('on PostgreSQL', { skip: await postgresUnavailable() }, async (t) => {
  const db = await testDatabase(t)
  await contract(t, () => openIssuerStore(db.url), true)

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
