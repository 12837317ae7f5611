/**
 * The one way a revocation enters the issuer: over a store double, each method writes the right event (with
 * the keep window) together with its change, and wakes the fan-out only once the write is done; through a
 * real issuer, each revocation is delivered once, and the issuer's own verifier refuses the revoked token
 * as soon as the call has returned.
 */
import t from 'tap'
import type { RecordedRevocationEvent, RevocationEvent } from '../../../../lib/auth/feed-protocol.js'
import { Revocations, type RevocationsOptions } from '../../../../services/issuer/feed/revocations.js'
import type { SessionRevocationReason } from '../../../../services/issuer/store/types.js'
import { bearer, claimsOf, issuerFixture, login, register } from '../fixtures.js'

const NOW = 1_800_000_000_000
const KEEP_MS = 930_000

type Call =
  | {
      method: 'revokeSession'
      id: string
      reason: SessionRevocationReason
      now: number
      event: RevocationEvent
    }
  | {
      method: 'revokeUserSessions'
      userId: string
      reason: SessionRevocationReason
      now: number
      event: RevocationEvent
    }
  | { method: 'changePassword'; userId: string; passwordHash: string; now: number; event: RevocationEvent }
  | { method: 'disableUser'; userId: string; now: number; event: RevocationEvent }
  | { method: 'recordRevocation'; event: RevocationEvent }

/** A store that records what it is asked, and a fan-out that counts wake-ups (and when they came). */
function setup(options: { sessionLive?: boolean; fanout?: boolean } = {}) {
  const calls: Call[] = []
  const order: string[] = []
  let cursor = 0
  const store: RevocationsOptions['store'] = {
    async revokeSession(id, reason, now, event) {
      calls.push({ method: 'revokeSession', id, reason, now, event })
      order.push('write')
      return options.sessionLive ?? true
    },
    async revokeUserSessions(userId, reason, now, event) {
      calls.push({ method: 'revokeUserSessions', userId, reason, now, event })
      order.push('write')
      return 2
    },
    async changePassword(userId, passwordHash, now, event) {
      calls.push({ method: 'changePassword', userId, passwordHash, now, event })
      order.push('write')
    },
    async disableUser(userId, now, event) {
      calls.push({ method: 'disableUser', userId, now, event })
      order.push('write')
      return options.sessionLive ?? true
    },
    async recordRevocation(event) {
      calls.push({ method: 'recordRevocation', event })
      order.push('write')
      return { ...event, cursor: ++cursor } as RecordedRevocationEvent
    },
  }
  const fanout = {
    wakes: 0,
    async wake() {
      fanout.wakes++
      order.push('wake')
    },
  }
  const revocations = new Revocations({
    store,
    keepMs: KEEP_MS,
    now: () => NOW,
    ...(options.fanout === false ? {} : { fanout }),
  })
  return { revocations, calls, order, fanout }
}

const window = { createdAt: NOW, expiresAt: NOW + KEEP_MS }

t.test('a session: revoked with its event in one write, then the fan-out woken', async (t) => {
  const { revocations, calls, order } = setup()
  t.equal(await revocations.recordSession('s1', 'logout'), true)
  t.same(calls, [
    {
      method: 'revokeSession',
      id: 's1',
      reason: 'logout',
      now: NOW,
      event: { type: 'session', sessionId: 's1', ...window },
    },
  ])
  t.same(order, ['write', 'wake'], 'woken after the write, not before')
})

t.test('a session that was not live records nothing and wakes nobody', async (t) => {
  const { revocations, fanout } = setup({ sessionLive: false })
  t.equal(await revocations.recordSession('s1', 'admin'), false)
  t.equal(fanout.wakes, 0)
})

t.test('a user: every token issued until now, with the sessions or the password change', async (t) => {
  const { revocations, calls, fanout } = setup()
  t.equal(await revocations.recordUser('u1', 'logout_all'), 2, 'how many sessions were live')
  await revocations.recordPasswordChange('u1', '$argon2id$new')
  const userEvent = { type: 'user', subject: 'u1', issuedBefore: NOW, ...window }
  t.same(calls, [
    { method: 'revokeUserSessions', userId: 'u1', reason: 'logout_all', now: NOW, event: userEvent },
    { method: 'changePassword', userId: 'u1', passwordHash: '$argon2id$new', now: NOW, event: userEvent },
  ])
  t.equal(fanout.wakes, 2)
})

t.test('disabling a user: the same user event, woken only when the user was enabled', async (t) => {
  const { revocations, calls, fanout } = setup()
  t.equal(await revocations.recordUserDisabled('u1'), true)
  const userEvent = { type: 'user', subject: 'u1', issuedBefore: NOW, ...window }
  t.same(calls, [{ method: 'disableUser', userId: 'u1', now: NOW, event: userEvent }])
  t.equal(fanout.wakes, 1)
  const already = setup({ sessionLive: false })
  t.equal(await already.revocations.recordUserDisabled('u1'), false)
  t.equal(already.fanout.wakes, 0, 'disabled already: nobody woken')
})

t.test('a token and a key: recorded alone; a key until it leaves the set', async (t) => {
  const { revocations, calls, fanout } = setup()
  const token = await revocations.recordToken('jti-1')
  t.same(token, { type: 'token', tokenId: 'jti-1', ...window, cursor: 1 })
  const key = await revocations.recordKey({ kid: 'k1', revokedAt: NOW - 5, removeAt: NOW + 10_000 })
  t.same(key, { type: 'key', kid: 'k1', createdAt: NOW - 5, expiresAt: NOW + 10_000, cursor: 2 })
  const bare = await revocations.recordKey({ kid: 'k2' })
  t.same(bare, { type: 'key', kid: 'k2', ...window, cursor: 3 }, 'without its times: now, for the window')
  t.equal(calls.length, 3)
  t.equal(fanout.wakes, 3)
})

t.test('without a fan-out (the command line) it records all the same', async (t) => {
  const { revocations, calls } = setup({ fanout: false })
  await revocations.recordKey({ kid: 'k1', revokedAt: NOW, removeAt: NOW + 1 })
  t.equal(calls.length, 1)
})

t.test('in the issuer, each revocation is delivered once, and refused before the call returns', async (t) => {
  const { app } = await issuerFixture(t)
  // The issuer's own verifier follows the fan-out like the feed's streams: what it delivers, the verifier
  // applies, and nothing else does.
  const delivered: RecordedRevocationEvent[] = []
  app.issuer.feed.fanout.subscribe((events) => delivered.push(...events))

  await register(app, 'once@example.com')
  const first = await login(app, 'once@example.com')
  const second = await login(app, 'once@example.com')
  const logoutAll = (token: string) =>
    app.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(token) })

  t.equal((await logoutAll(second.accessToken)).statusCode, 204)
  t.equal(delivered.length, 1, 'delivered once, before the call returned')
  t.match(delivered[0], { type: 'user', subject: claimsOf(first.accessToken).sub })
  const after = await logoutAll(first.accessToken)
  t.equal(after.statusCode, 401)
  t.equal(after.json().code, 'KG_TOKEN_REVOKED', 'the issuer itself refuses the revoked token at once')
  t.equal(delivered.length, 1)
})
