import t, { type Test } from 'tap'
import { RevocationFeed, type RevocationFeedOptions } from '../../../lib/auth/revocation-feed.js'
import { RevocationSet } from '../../../lib/auth/revocation-set.js'
import type { Identity } from '../../../lib/auth/types.js'
import { startFeedServer } from '../../helpers/feed-server.js'

const identity = (over: Partial<Identity> = {}): Identity => ({
  subject: 'u1',
  principal: 'u1',
  issuer: 'iss',
  clientId: 'c',
  sessionId: 's1',
  roles: [],
  scopes: [],
  tokenId: 't1',
  issuedAt: Math.floor(Date.now() / 1000) - 10,
  expiresAt: Math.floor(Date.now() / 1000) + 600,
  keyId: 'k1',
  claims: {},
  source: 'token',
  token: undefined,
  ...over,
})

async function until(check: () => boolean, what: string, timeoutMs = 5_000) {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

async function setup(
  t: Test,
  options: Partial<RevocationFeedOptions> = {},
  server?: Awaited<ReturnType<typeof startFeedServer>>,
) {
  const feedServer = server ?? (await startFeedServer())
  const set = new RevocationSet('iss')
  const applied: number[] = []
  const feed = new RevocationFeed({
    issuer: 'iss',
    url: feedServer.url,
    secret: feedServer.secret,
    set,
    onApplied: (events) => applied.push(...events.map((e) => e.cursor)),
    ...options,
  })
  t.teardown(async () => {
    await feed.close()
    await feedServer.close()
  })
  return { server: feedServer, set, feed, applied }
}

t.test('the backlog is applied before the feed reports synced; live events follow at once', async (t) => {
  const server = await startFeedServer()
  const expiresAt = Date.now() + 600_000
  server.publish({ type: 'session', sessionId: 's1', expiresAt })
  server.publish({ type: 'token', tokenId: 't9', expiresAt })
  const { set, feed, applied } = await setup(t, {}, server)
  feed.start()
  await feed.synced()
  t.equal(feed.state, 'live')
  t.same(applied, [1, 2])
  t.ok(set.isRevoked(identity()), 'session revoked')
  t.ok(set.isRevoked(identity({ sessionId: 'other', tokenId: 't9' })), 'token revoked')

  const started = Date.now()
  server.publish({ type: 'user', subject: 'u2', issuedBefore: Date.now(), expiresAt })
  await until(() => feed.cursor === 3, 'the live event')
  t.ok(Date.now() - started < 1_000, 'applied within a second')
  t.ok(set.isRevoked(identity({ subject: 'u2', sessionId: 'x', tokenId: 'y' })))
  t.equal(feed.cursorLag(), 0)
})

t.test('a dropped stream resumes from the last cursor and loses nothing', async (t) => {
  const { server, feed, applied } = await setup(t)
  feed.start()
  await feed.synced()
  const expiresAt = Date.now() + 600_000
  server.publish({ type: 'session', sessionId: 'a', expiresAt })
  await until(() => feed.cursor === 1, 'first event')
  server.dropStreams()
  // Published while the verifier is disconnected (or reconnecting).
  server.publish({ type: 'session', sessionId: 'b', expiresAt })
  server.publish({ type: 'session', sessionId: 'c', expiresAt })
  await until(() => feed.cursor === 3, 'events published during the outage')
  t.same(applied, [1, 2, 3], 'every event exactly once, in order')
  t.ok(server.connections >= 2, 'it reconnected')
})

t.test('a wrong secret never syncs; the state says down', async (t) => {
  const server = await startFeedServer()
  const { feed } = await setup(t, { secret: 'wrong-secret-wrong-secret' }, server)
  feed.start()
  await until(() => feed.state === 'down', 'down state')
  t.notOk(feed.isSynced())
})

t.test('staleness: out of contact longer than the bound', async (t) => {
  let now = Date.now()
  const { server, feed } = await setup(t, { now: () => now, maxStaleMs: 30_000, silenceMs: 300 })
  feed.start()
  await feed.synced()
  now += 29_000
  await until(() => feed.silenceSeconds() < 1, 'a heartbeat')
  t.notOk(feed.isStale(), 'heartbeats keep it fresh')
  server.silent = true
  const connections = server.connections
  await until(() => server.connections > connections, 'a reconnect after silence')
  t.pass('a silent stream is presumed dead and reopened')
  await server.close()
  now += 31_000
  t.ok(feed.isStale(), 'with the issuer gone, the feed goes stale past the bound')
})

t.test('an issuer whose history restarted (a new database) is read again from the start', async (t) => {
  const { server, feed, set } = await setup(t)
  feed.start()
  await feed.synced()
  const expiresAt = Date.now() + 600_000
  server.publish({ type: 'session', sessionId: 'old-1', expiresAt })
  server.publish({ type: 'session', sessionId: 'old-2', expiresAt })
  await until(() => feed.cursor === 2, 'the first history')
  server.events.length = 0
  server.publish({ type: 'session', sessionId: 'new-1', expiresAt })
  server.dropStreams()
  await until(() => set.isRevoked(identity({ sessionId: 'new-1' })), 'the new history’s first event')
  t.equal(feed.cursor, 1, 'the cursor follows the new history')
})
