/**
 * The key set in the database, on SQLite and on PostgreSQL: what two issuer instances on one database see
 * of each other's changes, and that private keys are stored only sealed.
 */
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { DatabaseKeyStorage } from '../../../../services/issuer/keys/database-key-storage.js'
import { KeySealer } from '../../../../services/issuer/keys/key-sealing.js'
import { KeySet } from '../../../../services/issuer/keys/key-set.js'
import type { KeySchedule } from '../../../../services/issuer/keys/lifecycle.js'
import { openIssuerStore } from '../../../../services/issuer/store/issuer-store.js'
import type { IssuerStore } from '../../../../services/issuer/store/types.js'
import { postgresUnavailable, testDatabase } from '../../../helpers/postgres.js'
import { FakeClock, tempDir } from '../fixtures.js'

const HOUR = 3_600_000
const schedule: KeySchedule = {
  keyPublishLeadMs: HOUR,
  keyRotationIntervalMs: 2 * HOUR,
  retiredKeyKeepMs: 21 * 60_000,
  revokedKeyKeepMs: 16 * 60_000,
  rsaBits: 2048,
}

async function contract(t: Test, open: () => Promise<IssuerStore>, shared: boolean) {
  const kek = randomBytes(32)
  const storeA = await open()
  const storeB = shared ? await open() : storeA
  t.teardown(async () => {
    await storeA.close()
    if (storeB !== storeA) await storeB.close()
  })
  const clock = new FakeClock()
  const storage = (store: IssuerStore, key = kek) => new DatabaseKeyStorage({ store, sealer: new KeySealer(key) })
  const a = new KeySet({ storage: storage(storeA), schedule, now: clock.now })
  const b = new KeySet({ storage: storage(storeB), schedule, now: clock.now })

  t.test('two instances starting together generate one set and serve the same JWKS', async (t) => {
    await Promise.all([a.load(), b.load()])
    t.same(a.jwks(), b.jwks())
    t.equal(a.jwks().keys.length, 2)
    t.equal(a.signingKey().kid, b.signingKey().kid)
    t.same(await a.storage.read(), await b.storage.read())
  })

  t.test('private keys are stored sealed, never as a JWK', async (t) => {
    const { keys } = await storeA.readKeySet()
    for (const key of keys) {
      t.match(key.sealedPrivateKey, /^kgk1\./)
      const stored = a.document.keys.find((k) => k.kid === key.kid)!
      t.notOk(key.sealedPrivateKey.includes(stored.privateJwk.d!), 'the private exponent is not in the row')
    }
  })

  t.test("a change through one instance is the other's on its next reload", async (t) => {
    t.notOk(await b.reloadIfChanged(), 'nothing changed yet')
    const active = a.signingKey().kid
    const before = (await storeA.readKeySet()).keys.find((k) => k.kid !== active)!
    await a.revoke(active)
    t.equal(b.signingKey().kid, active, 'not yet reloaded')
    t.ok(await b.reloadIfChanged())
    t.not(b.signingKey().kid, active)
    t.same(b.jwks(), a.jwks())
    const after = (await storeA.readKeySet()).keys.find((k) => k.kid === before.kid)!
    t.equal(after.sealedPrivateKey, before.sealedPrivateKey, 'an unchanged key keeps its sealed form')
    clock.advance(2 * HOUR)
    t.ok(await b.maintain(), 'scheduled rotation through the other instance')
    t.ok(await a.reloadIfChanged())
    t.equal(a.signingKey().kid, b.signingKey().kid)
  })

  t.test('a wrong KEY_ENCRYPTION_KEY stops the load with a message naming it', async (t) => {
    const wrong = new KeySet({ storage: storage(storeA, randomBytes(32)), schedule, now: clock.now })
    await t.rejects(wrong.load(), { message: /sealed with a different KEY_ENCRYPTION_KEY/ })
  })
}

t.test('on SQLite', async (t) => {
  const dir = tempDir(t)
  await contract(t, () => openIssuerStore(join(dir, 'issuer.db')), false)
})

t.test('on PostgreSQL', { skip: await postgresUnavailable() }, async (t) => {
  const db = await testDatabase(t)
  await contract(t, () => openIssuerStore(db.url), true)
})
