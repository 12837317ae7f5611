import t from 'tap'
import { KeygateError } from '../../../../lib/errors.js'
import { EMPTY_KEY_SET, keyIn, publishedKeys } from '../../../../services/issuer/keys/key-document.js'
import {
  ensureKeys,
  type KeySchedule,
  maintainKeys,
  maintenanceDue,
  pruneKeys,
  revokeKey,
  rotateKeys,
  rotationDue,
} from '../../../../services/issuer/keys/lifecycle.js'

const MIN = 60_000
const HOUR = 60 * MIN
const schedule: KeySchedule = {
  keyPublishLeadMs: HOUR,
  keyRotationIntervalMs: 72 * HOUR,
  retiredKeyKeepMs: 21 * MIN,
  revokedKeyKeepMs: 16 * MIN,
  rsaBits: 2048,
}
const T0 = 1_800_000_000_000

const states = (doc: { keys: { state: string }[] }) => doc.keys.map((k) => k.state).sort()

t.test('first start: one active key that signs at once and one published next key', async (t) => {
  const doc = await ensureKeys(EMPTY_KEY_SET, T0, schedule)
  t.same(states(doc), ['active', 'next'])
  const active = keyIn(doc, 'active')!
  t.equal(active.activatedAt, T0)
  t.match(active.kid, /^[A-Za-z0-9_-]{43}$/, 'kid is a SHA-256 thumbprint')
  t.equal(active.privateJwk.kty, 'RSA')
  t.equal(await ensureKeys(doc, T0 + 1, schedule), doc, 'a complete set is left alone')
})

t.test('the pair made on first start rotates at once: every verifier holding the active key holds next', async (t) => {
  const doc = await ensureKeys(EMPTY_KEY_SET, T0, schedule)
  const rotated = await rotateKeys(doc, T0 + 1000, schedule)
  t.equal(keyIn(rotated, 'active')!.kid, keyIn(doc, 'next')!.kid)
})

t.test('rotation waits for the publication lead, then promotes next and retires active', async (t) => {
  const T1 = T0 + 1000
  const doc = await rotateKeys(await ensureKeys(EMPTY_KEY_SET, T0, schedule), T1, schedule)
  const active = keyIn(doc, 'active')!
  const next = keyIn(doc, 'next')!
  t.equal(next.createdAt, T1, 'a next key published after the active one')

  const early = await rotateKeys(doc, T1 + HOUR - 1000, schedule).catch((err: unknown) => err)
  t.ok(early instanceof KeygateError)
  const err = early as KeygateError
  t.equal(err.code, 'KG_KEY_ROTATION_TOO_EARLY')
  t.equal(err.statusCode, 409)
  t.equal(err.headers['retry-after'], '1')
  t.equal(err.details?.rotate_after, new Date(T1 + HOUR).toISOString())

  const at = T1 + HOUR
  const rotated = await rotateKeys(doc, at, schedule)
  t.same(states(rotated), ['active', 'next', 'retired', 'retired'])
  t.equal(keyIn(rotated, 'active')!.kid, next.kid, 'the pre-published key signs')
  t.equal(keyIn(rotated, 'active')!.activatedAt, at)
  const retired = rotated.keys.find((k) => k.kid === active.kid)!
  t.equal(retired.state, 'retired')
  t.equal(retired.removeAt, at + schedule.retiredKeyKeepMs)
  const newNext = keyIn(rotated, 'next')!
  t.not(newNext.kid, next.kid)
  t.equal(newNext.createdAt, at)
  t.equal(publishedKeys(rotated).length, 4, 'next, active and both retired keys are published')

  t.equal(pruneKeys(rotated, retired.removeAt! - 1).keys.some((k) => k.kid === active.kid), true, 'a retired key stays until removeAt')
  t.equal(pruneKeys(rotated, retired.removeAt!).keys.some((k) => k.kid === active.kid), false)
})

t.test('scheduled rotation is due one interval after activation', async (t) => {
  const doc = await ensureKeys(EMPTY_KEY_SET, T0, schedule)
  t.notOk(rotationDue(doc, T0 + 72 * HOUR - 1, schedule))
  t.notOk(maintenanceDue(doc, T0 + 72 * HOUR - 1, schedule))
  t.ok(rotationDue(doc, T0 + 72 * HOUR, schedule))
  const maintained = await maintainKeys(doc, T0 + 72 * HOUR, schedule)
  t.equal(keyIn(maintained, 'active')!.kid, keyIn(doc, 'next')!.kid)
})

t.test('emergency revocation', async (t) => {
  const doc = await ensureKeys(EMPTY_KEY_SET, T0, schedule)
  const active = keyIn(doc, 'active')!
  const next = keyIn(doc, 'next')!

  t.test('of the active key promotes next at once, however young', async (t) => {
    const { doc: after, revoked } = await revokeKey(doc, active.kid, T0 + 1000, schedule)
    t.equal(revoked.state, 'revoked')
    t.equal(revoked.revokedAt, T0 + 1000)
    t.equal(revoked.removeAt, T0 + 1000 + schedule.revokedKeyKeepMs)
    t.equal(keyIn(after, 'active')!.kid, next.kid)
    t.ok(keyIn(after, 'next'), 'a new next key is generated')
    t.notOk(
      publishedKeys(after).some((k) => k.kid === active.kid),
      'a revoked key is withdrawn from the JWKS',
    )
    t.ok(after.keys.some((k) => k.kid === active.kid), 'but listed until its tokens expired')
    t.same(states(pruneKeys(after, revoked.removeAt!)), ['active', 'next'])
  })

  t.test('of the next key replaces it', async (t) => {
    const { doc: after } = await revokeKey(doc, next.kid, T0 + 1000, schedule)
    t.equal(keyIn(after, 'active')!.kid, active.kid)
    t.not(keyIn(after, 'next')!.kid, next.kid)
    await t.rejects(rotateKeys(after, T0 + 2000, schedule), { code: 'KG_KEY_ROTATION_TOO_EARLY' })
  })

  t.test('of a retired key withdraws it', async (t) => {
    const rotated = await rotateKeys(doc, T0 + HOUR, schedule)
    const { doc: after } = await revokeKey(rotated, active.kid, T0 + HOUR + 1, schedule)
    t.same(states(after), ['active', 'next', 'revoked'])
  })

  t.test('refuses unknown and already revoked keys', async (t) => {
    await t.rejects(revokeKey(doc, 'nope', T0, schedule), { code: 'KG_KEY_NOT_FOUND' })
    const { doc: after } = await revokeKey(doc, active.kid, T0, schedule)
    await t.rejects(revokeKey(after, active.kid, T0, schedule), { code: 'KG_KEY_STATE_CONFLICT' })
  })
})
