import t from 'tap'
import type { RevocationEvent } from '../../../lib/auth/feed-protocol.js'
import { RevocationSet } from '../../../lib/auth/revocation-set.js'
import type { Identity } from '../../../lib/auth/types.js'

const ISS = 'https://issuer.test'
const T0 = 1_700_000_000_000

const identity = (over: Partial<Identity> = {}): Identity => ({
  subject: 'u1',
  principal: 'u1',
  issuer: ISS,
  clientId: 'web',
  sessionId: 's1',
  roles: [],
  scopes: [],
  tokenId: 't1',
  issuedAt: (T0 - 60_000) / 1000,
  expiresAt: (T0 + 600_000) / 1000,
  keyId: 'k1',
  claims: {},
  source: 'token',
  token: undefined,
  ...over,
})

const session = (sessionId: string, expiresAt = T0 + 1000): RevocationEvent => ({
  type: 'session',
  sessionId,
  createdAt: T0,
  expiresAt,
})
const user = (subject: string, issuedBefore: number, expiresAt = T0 + 1000): RevocationEvent => ({
  type: 'user',
  subject,
  issuedBefore,
  createdAt: issuedBefore,
  expiresAt,
})

t.test('each kind of revocation covers its tokens and no others', async (t) => {
  const set = new RevocationSet(ISS)
  t.notOk(set.isRevoked(identity()), 'an empty set revokes nothing')
  set.apply([
    session('s-gone'),
    { type: 'token', tokenId: 't-gone', createdAt: T0, expiresAt: T0 + 1000 },
    { type: 'key', kid: 'k-gone', createdAt: T0, expiresAt: T0 + 1000 },
    user('u-gone', T0),
  ])
  t.equal(set.size, 4)
  t.ok(set.isRevoked(identity({ sessionId: 's-gone' })), 'by session')
  t.ok(set.isRevoked(identity({ tokenId: 't-gone' })), 'by token')
  t.ok(set.isRevoked(identity({ keyId: 'k-gone' })), 'by signing key')
  t.ok(set.isRevoked(identity({ subject: 'u-gone' })), 'by user, issued before')
  t.notOk(set.isRevoked(identity()), 'an identity none of them names')
  t.notOk(set.isRevoked(identity({ sessionId: undefined })), 'a token without a session')
  t.notOk(
    set.isRevoked(identity({ issuer: 'https://other.test', sessionId: 's-gone', subject: 'u-gone' })),
    'the same ids from another issuer are another principal',
  )
})

t.test('a user revocation covers tokens issued up to its instant, to the millisecond', async (t) => {
  const set = new RevocationSet(ISS)
  set.apply([user('u1', T0)])
  t.ok(set.isRevoked(identity({ issuedAt: (T0 - 1) / 1000 })), 'a millisecond before')
  t.ok(set.isRevoked(identity({ issuedAt: T0 / 1000 })), 'the same millisecond: refused')
  t.notOk(set.isRevoked(identity({ issuedAt: (T0 + 1) / 1000 })), 'a millisecond after: a new login')
  t.ok(
    set.isRevoked(identity({ issuedAt: Math.floor(T0 / 1000) })),
    'a whole-second iat in that second counts as before',
  )

  set.apply([user('u1', T0 - 5_000, T0 + 500)])
  t.ok(set.isRevoked(identity({ issuedAt: (T0 - 1) / 1000 })), 'an older event does not narrow it')
  set.apply([user('u1', T0 + 10_000)])
  t.ok(set.isRevoked(identity({ issuedAt: (T0 + 5_000) / 1000 })), 'a later one widens it')
  t.equal(set.size, 1, 'one entry per user')
})

t.test('after each batch, listeners learn which identities are now revoked', async (t) => {
  const set = new RevocationSet(ISS)
  const calls: Array<(identity: Identity) => boolean> = []
  set.onRevoked((revoked) => calls.push(revoked))
  set.apply([session('s1'), session('s2'), user('u9', T0)])
  t.equal(calls.length, 1, 'one call for the whole batch')
  const revoked = calls[0]!
  t.ok(revoked(identity({ sessionId: 's1' })))
  t.ok(revoked(identity({ sessionId: 's2' })))
  t.ok(revoked(identity({ subject: 'u9', sessionId: 'x' })))
  t.notOk(revoked(identity({ sessionId: 's3' })))
  t.notOk(revoked(identity({ issuer: 'https://other.test', sessionId: 's1' })), 'only this issuer')
  set.apply([session('s3')])
  t.equal(calls.length, 2)
})

t.test('pruning forgets what has expired and keeps the rest', async (t) => {
  const set = new RevocationSet(ISS)
  set.apply([
    session('short', T0 + 1000),
    session('long', T0 + 5000),
    { type: 'token', tokenId: 't1', createdAt: T0, expiresAt: T0 + 1000 },
    { type: 'key', kid: 'k1', createdAt: T0, expiresAt: T0 + 1000 },
    user('u1', T0, T0 + 1000),
  ])
  set.apply([session('short', T0 + 3000)])
  set.prune(T0 + 999)
  t.equal(set.size, 5, 'nothing has expired yet')
  set.prune(T0 + 1000)
  t.equal(set.size, 2, 'entries go once their tokens have expired')
  t.ok(set.isRevoked(identity({ sessionId: 'short' })), 'a later expiry for the same session was kept')
  t.ok(set.isRevoked(identity({ sessionId: 'long' })))
  t.notOk(set.isRevoked(identity({ sessionId: 'x', tokenId: 't1' })))
  set.prune(T0 + 5000)
  t.equal(set.size, 0)
})
