import { join } from 'node:path'
import t, { type Test } from 'tap'
import { isPostgresUrl, openDatabase } from '../../../lib/db.js'
import {
  type FileQuota,
  fileMigrations,
  FileStore,
  type FileTables,
  QuotaExceededError,
} from '../../../services/files/store.js'
import { postgresUnavailable, testDatabase } from '../../helpers/postgres.js'
import { tempDir } from '../../helpers/services.js'

async function storeContract(t: Test, url: string) {
  const db = await openDatabase<FileTables>({ url, migrations: fileMigrations })
  t.teardown(() => db.destroy())
  const store = new FileStore(db, { bytes: 1_000_000, count: 100 })
  const bytes = Buffer.from([0, 255, 1, 254])

  const first = await store.put('alice', 'a.bin', 'application/octet-stream', bytes, 1_000)
  t.equal(first.created, true)
  t.match(first.file, { name: 'a.bin', size: 4, contentType: 'application/octet-stream' })
  const second = await store.put('alice', 'a.bin', 'text/plain', Buffer.from('v2'), 2_000)
  t.equal(second.created, false, 'replaced')
  t.not(second.file.id, first.file.id, 'a new version id at every upload')
  await store.put('bob', 'a.bin', 'text/plain', Buffer.from('bob'), 3_000)

  t.same(await store.content('alice', 'a.bin', first.file.id), undefined, 'the old version is gone')
  const current = await store.content('alice', 'a.bin', second.file.id)
  t.same(current, { contentType: 'text/plain', content: Buffer.from('v2') })
  t.same(await store.list('alice'), [
    { name: 'a.bin', size: 2, contentType: 'text/plain', updatedAt: new Date(2_000).toISOString() },
  ])
  t.equal((await store.find('bob', 'a.bin'))?.size, 3)
  t.equal(await store.find('carol', 'a.bin'), undefined)

  const binary = Buffer.alloc(256)
  for (let i = 0; i < 256; i++) binary[i] = i
  await store.put('alice', 'all-bytes', 'application/octet-stream', binary, 4_000)
  const allBytes = await store.find('alice', 'all-bytes')
  t.same(
    (await store.content('alice', 'all-bytes', allBytes!.id))?.content,
    binary,
    'every byte value survives',
  )

  t.equal(await store.spendLink('j1', 10_000, 0), true, 'first use')
  t.equal(await store.spendLink('j1', 10_000, 0), false, 'second use')
  const racing = await Promise.all(Array.from({ length: 8 }, () => store.spendLink('j2', 10_000, 0)))
  t.equal(racing.filter(Boolean).length, 1, 'of concurrent uses exactly one wins')
  await store.spendLink('j3', 20_000, 15_000)
  t.equal(await store.spendLink('j1', 10_000, 0), true, 'an id expired before forgetBefore is forgotten')
}

async function quotaContract(t: Test, url: string) {
  const open = async (quota: FileQuota) => {
    const db = await openDatabase<FileTables>({ url, migrations: fileMigrations })
    t.teardown(() => db.destroy())
    return new FileStore(db, quota)
  }
  const store = await open({ bytes: 100, count: 3 })
  const bytes = (n: number) => Buffer.alloc(n, 7)
  /** What the upload was refused for, as [bound, limit, used]; fails the test if it was stored. */
  const refusal = async (upload: Promise<unknown>): Promise<[string, number, number] | 'stored'> => {
    try {
      await upload
      return 'stored'
    } catch (err) {
      if (!(err instanceof QuotaExceededError)) throw err
      return [err.quota, err.limit, err.used]
    }
  }

  await store.put('alice', 'a', 'x/y', bytes(60), 1)
  t.same(await refusal(store.put('alice', 'b', 'x/y', bytes(41), 2)), ['bytes', 100, 60], '60 + 41 > 100')
  t.equal(await store.find('alice', 'b'), undefined, 'nothing stored')
  await store.put('alice', 'b', 'x/y', bytes(40), 3)
  t.ok(await store.find('alice', 'b'), 'exactly at the quota is fine')
  await store.put('alice', 'a', 'x/y', bytes(50), 4)
  await store.put('alice', 'a', 'x/y', bytes(60), 5)
  t.pass('a replacement counts only its growth: 60 → 50 → 60 bytes, total back at 100')
  t.same(await refusal(store.put('alice', 'a', 'x/y', bytes(61), 6)), ['bytes', 100, 100], 'growing past it')
  await store.put('alice', 'c', 'x/y', bytes(0), 7)
  t.same(await refusal(store.put('alice', 'd', 'x/y', bytes(0), 8)), ['count', 3, 3], 'a fourth file')
  await store.put('alice', 'c', 'x/y', bytes(0), 9)
  t.pass('replacing one of three files is not a new file')
  await store.put('bob', 'a', 'x/y', bytes(100), 10)
  t.pass("bob's quota is his own")

  t.equal(await store.remove('alice', 'b'), true, 'removed')
  t.equal(await store.remove('alice', 'b'), false, 'already gone')
  t.equal(await store.remove('carol', 'a'), false, "another owner's name is not the caller's file")
  t.ok(await store.find('alice', 'a'), 'other files stay')
  t.ok(await store.find('bob', 'a'), "and so do other owners' files of the same name")
  await store.put('alice', 'd', 'x/y', bytes(40), 11)
  t.pass('removing freed both a file and its bytes')

  const lowered = await open({ bytes: 10, count: 1 })
  await lowered.put('alice', 'a', 'x/y', bytes(30), 12)
  t.pass('under a quota lowered below usage, a replacement that shrinks usage is still taken')
  t.same(
    await refusal(lowered.put('alice', 'a', 'x/y', bytes(31), 13)),
    ['bytes', 10, 70],
    'but not one that grows it',
  )
  t.same(await refusal(lowered.put('alice', 'e', 'x/y', bytes(0), 14)), ['count', 1, 3], 'nor a new file')

  // Concurrent uploads: of 20 uploads of 10 bytes under a 100-byte quota exactly 10 are stored, whichever
  // order they run in. On PostgreSQL from two handles (two pools: truly concurrent transactions); on
  // SQLite from one, as in one files process (two connections of one process would wait on each other's
  // write lock inside one thread; processes sharing the file are serialized by BEGIN IMMEDIATE).
  const a = await open({ bytes: 100, count: 1000 })
  const b = isPostgresUrl(url) ? await open({ bytes: 100, count: 1000 }) : a
  const outcomes = await Promise.allSettled(
    Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).put('dave', `f${i}`, 'x/y', bytes(10), 20 + i)),
  )
  const refused = outcomes.filter((o) => o.status === 'rejected')
  t.equal(outcomes.length - refused.length, 10, '10 stored')
  t.ok(
    refused.every((o) => (o as PromiseRejectedResult).reason instanceof QuotaExceededError),
    '10 refused for the quota',
  )
  const stored = await a.list('dave')
  t.equal(
    stored.reduce((sum, f) => sum + f.size, 0),
    100,
    'the store holds exactly the quota',
  )
}

t.test('on SQLite', async (t) => storeContract(t, join(tempDir(t), 'files.db')))
t.test('quota and removal on SQLite', async (t) => quotaContract(t, join(tempDir(t), 'files.db')))

t.test('on PostgreSQL', { skip: await postgresUnavailable() }, async (t) => {
  const database = await testDatabase(t)
  await storeContract(t, database.url)
})

t.test('quota and removal on PostgreSQL', { skip: await postgresUnavailable() }, async (t) => {
  const database = await testDatabase(t)
  await quotaContract(t, database.url)
})
