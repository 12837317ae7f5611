import { chmodSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { KeyFile } from '../../../../services/issuer/keys/key-file.js'
import { ensureKeys, type KeySchedule } from '../../../../services/issuer/keys/lifecycle.js'
import { tempDir } from '../fixtures.js'

const schedule: KeySchedule = {
  keyPublishLeadMs: 3_600_000,
  keyRotationIntervalMs: 7_200_000,
  retiredKeyKeepMs: 1_260_000,
  revokedKeyKeepMs: 960_000,
  rsaBits: 2048,
}

t.test('an absent file reads as an empty set', async (t) => {
  const file = new KeyFile(join(tempDir(t), 'keys'))
  const { doc, revision } = await file.read()
  t.same(doc.keys, [])
  t.equal(revision, undefined)
})

t.test('the directory is 0700 and the file 0600, written atomically', async (t) => {
  const dir = join(tempDir(t), 'keys')
  mkdirSync(dir, { mode: 0o755 })
  chmodSync(dir, 0o755)
  const file = new KeyFile(dir)
  const { doc } = await file.update(async (current) => ({ doc: await ensureKeys(current, 1, schedule), result: 0 }))
  t.equal(statSync(dir).mode & 0o777, 0o700)
  t.equal(statSync(file.path).mode & 0o777, 0o600)
  t.same(readdirSync(dir), ['keyset.json'], 'no temp file or lock left behind')
  t.same((await file.read()).doc, doc)
})

t.test('concurrent updates are serialised by the lock: none is lost', async (t) => {
  const dir = join(tempDir(t), 'keys')
  const file = new KeyFile(dir)
  await file.update(async (current) => ({ doc: await ensureKeys(current, 1, schedule), result: 0 }))
  await Promise.all(
    Array.from({ length: 5 }, (_, i) =>
      file.update(async (current) => {
        await new Promise((resolve) => setTimeout(resolve, 5))
        return { doc: { ...current, keys: current.keys.map((k) => ({ ...k, createdAt: k.createdAt + 1 })) }, result: i }
      }),
    ),
  )
  const { doc } = await file.read()
  t.same(
    doc.keys.map((k) => k.createdAt),
    [6, 6],
    'every one of five concurrent increments landed',
  )
})

t.test('a damaged file fails loudly, naming the file', async (t) => {
  const dir = tempDir(t)
  const file = new KeyFile(dir)
  writeFileSync(file.path, '{"version":1,"keys":[{"kid":"x"}]}')
  await t.rejects(file.read(), /keyset\.json is invalid: key x has an unknown state/)
  writeFileSync(file.path, 'not json')
  await t.rejects(file.read(), /keyset\.json is not valid JSON/)
})
