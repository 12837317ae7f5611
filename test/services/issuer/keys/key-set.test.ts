import { generateKeyPairSync, verify } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { SignJWT } from 'jose'
import t from 'tap'
import { KEY_SET_FILE, KeyFile } from '../../../../services/issuer/keys/key-file.js'
import { KeySet } from '../../../../services/issuer/keys/key-set.js'
import type { KeySchedule } from '../../../../services/issuer/keys/lifecycle.js'
import { FakeClock, tempDir } from '../fixtures.js'

const HOUR = 3_600_000
const schedule: KeySchedule = {
  keyPublishLeadMs: HOUR,
  keyRotationIntervalMs: 2 * HOUR,
  retiredKeyKeepMs: 21 * 60_000,
  revokedKeyKeepMs: 16 * 60_000,
  rsaBits: 2048,
}

t.test('first load generates keys; JWKS and key source hold public keys only', async (t) => {
  const clock = new FakeClock()
  const keys = new KeySet({ storage: new KeyFile(join(tempDir(t), 'keys')), schedule, now: clock.now })
  t.notOk(keys.loaded)
  t.throws(() => keys.signingKey())
  await keys.load()
  t.ok(keys.loaded)
  const jwks = keys.jwks()
  t.equal(jwks.keys.length, 2)
  for (const jwk of jwks.keys) {
    t.same(Object.keys(jwk).sort(), ['alg', 'e', 'kid', 'kty', 'n', 'use'], 'public parts only')
    t.equal(jwk.alg, 'RS256')
    t.equal(jwk.use, 'sig')
  }
  const signer = keys.signingKey()
  const token = await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: signer.kid }).sign(signer.key)
  const [h, p, s] = token.split('.')
  const source = keys.keySource()
  await source.ready()
  t.ok(source.usable())
  const vk = (await source.getKey(signer.kid))!
  t.equal(vk.alg, 'RS256')
  t.ok(verify('sha256', Buffer.from(`${h}.${p}`), vk.key, Buffer.from(s!, 'base64url')), 'signature verifies')
  t.equal(await source.getKey('unknown'), undefined)
  t.same(keys.countByState(), { next: 1, active: 1, retired: 0, revoked: 0 })
})

t.test('a second process sees changes on its next reload; removed kids are reported', async (t) => {
  const dir = join(tempDir(t), 'keys')
  const clock = new FakeClock()
  const issuer = new KeySet({ storage: new KeyFile(dir), schedule, now: clock.now })
  await issuer.load()
  const removed: string[][] = []
  issuer.keySource().onKeysRemoved((kids) => removed.push(kids))
  t.notOk(await issuer.reloadIfChanged(), 'nothing changed')

  const cli = new KeySet({ storage: new KeyFile(dir), schedule, now: clock.now })
  const active = issuer.signingKey().kid
  await cli.revoke(active)
  t.equal(issuer.signingKey().kid, active, 'not yet reloaded')
  t.ok(await issuer.reloadIfChanged())
  t.not(issuer.signingKey().kid, active, 'the next key signs')
  t.same(removed, [[active]])
  t.equal(await issuer.keySource().getKey(active), undefined)
  t.notOk(
    issuer.jwks().keys.some((k) => k.kid === active),
    'withdrawn from the JWKS',
  )
})

t.test('maintain rotates when due and drops keys whose time is up', async (t) => {
  const clock = new FakeClock()
  const keys = new KeySet({ storage: new KeyFile(join(tempDir(t), 'keys')), schedule, now: clock.now })
  await keys.load()
  const first = keys.signingKey().kid
  t.notOk(await keys.maintain(), 'nothing to do yet')
  clock.advance(2 * HOUR)
  t.ok(await keys.maintain())
  t.not(keys.signingKey().kid, first)
  t.ok(
    keys.jwks().keys.some((k) => k.kid === first),
    'the retired key is still published',
  )
  clock.advance(schedule.retiredKeyKeepMs)
  t.ok(await keys.maintain())
  t.notOk(keys.jwks().keys.some((k) => k.kid === first), 'and gone after removeAt')
})

t.test('a key too short for RS256 is refused when the set loads, not when it first signs', async (t) => {
  const dir = join(tempDir(t), 'keys')
  mkdirSync(dir, { recursive: true })
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 })
  const privateJwk = privateKey.export({ format: 'jwk' })
  const key = (kid: string, state: string) => ({ kid, state, createdAt: 0, privateJwk })
  writeFileSync(
    join(dir, KEY_SET_FILE),
    JSON.stringify({ version: 1, keys: [key('short-active', 'active'), key('short-next', 'next')] }),
  )
  const keys = new KeySet({ storage: new KeyFile(dir), schedule, now: new FakeClock().now })
  await t.rejects(keys.load(), { message: /key short-(active|next) is not an RSA key of at least 2048 bits/ })
})
