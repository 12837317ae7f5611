import { join } from 'node:path'
import t, { type Test } from 'tap'
import { openDatabase } from '../../../lib/db.js'
import { fileMigrations, FileStore, type FileTables } from '../../../services/files/store.js'
import { postgresUnavailable, testDatabase } from '../../helpers/postgres.js'
import { tempDir } from '../../helpers/services.js'

async function storeContract(t: Test, url: string) {
  const db = await openDatabase<FileTables>({ url, migrations: fileMigrations })
  t.teardown(() => db.destroy())
  const store = new FileStore(db)
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

t.test('on SQLite', async (t) => storeContract(t, join(tempDir(t), 'files.db')))

t.test('on PostgreSQL', { skip: await postgresUnavailable() }, async (t) => {
  const database = await testDatabase(t)
  await storeContract(t, database.url)
})
