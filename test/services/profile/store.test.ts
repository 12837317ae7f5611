import { join } from 'node:path'
import t, { type Test } from 'tap'
import { openDatabase } from '../../../lib/db.js'
import { profileMigrations, ProfileStore, type ProfileTables } from '../../../services/profile/store.js'
import { postgresUnavailable, testDatabase } from '../../helpers/postgres.js'
import { tempDir } from '../../helpers/services.js'

async function storeContract(t: Test, url: string) {
  const db = await openDatabase<ProfileTables>({ url, migrations: profileMigrations })
  t.teardown(() => db.destroy())
  const store = new ProfileStore(db)
  t.same(await store.get('alice'), { displayName: null, updatedAt: null })
  await store.setDisplayName('alice', 'Alice', 1_000)
  await store.setDisplayName('alice', 'Alice L.', 2_000)
  await store.setDisplayName('bob', 'Bob', 3_000)
  t.same(await store.get('alice'), { displayName: 'Alice L.', updatedAt: new Date(2_000).toISOString() })
  t.same(await store.get('bob'), { displayName: 'Bob', updatedAt: new Date(3_000).toISOString() })
}

t.test('on SQLite', async (t) => storeContract(t, join(tempDir(t), 'profile.db')))

t.test('on PostgreSQL', { skip: await postgresUnavailable() }, async (t) => {
  const database = await testDatabase(t)
  await storeContract(t, database.url)
})
