/**
 * Every component on one PostgreSQL database (a throwaway one per run): the issuer in the default schema,
 * each service in its own, so no component's migrations look like another's ("corrupted migrations"), and a
 * store that cannot be opened names the setting. Skipped with a message without PostgreSQL, unless
 * KEYGATE_REQUIRE_POSTGRES=1.
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import pg from 'pg'
import t from 'tap'
import { openDatabase } from '../../lib/db.js'
import { buildFiles } from '../../services/files/app.js'
import { loadFilesConfig } from '../../services/files/config.js'
import { openIssuerStore } from '../../services/issuer/store/issuer-store.js'
import { buildOrders } from '../../services/orders/app.js'
import { loadOrdersConfig } from '../../services/orders/config.js'
import { buildProfile } from '../../services/profile/app.js'
import { loadProfileConfig } from '../../services/profile/config.js'
import { postgresUnavailable, testDatabase } from '../helpers/postgres.js'

const skip = await postgresUnavailable()

/** The three services on `url`, each as its entry point would build it, neighbours unreached. */
function services(url: string): FastifyInstance[] {
  const env = {
    DATA_DIR: mkdtempSync(join(tmpdir(), 'kg-db-')),
    LOG_LEVEL: 'silent',
    ISSUER_URL: 'http://127.0.0.1:9',
    REVOCATION_FEED: 'off',
    PROFILE_DATABASE_URL: url,
    ORDERS_DATABASE_URL: url,
    FILES_DATABASE_URL: url,
  }
  return [
    buildProfile({ config: loadProfileConfig(env) }),
    buildOrders({ config: loadOrdersConfig(env) }),
    buildFiles({ config: loadFilesConfig(env) }),
  ]
}

async function tablesBySchema(url: string): Promise<Record<string, string[]>> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const { rows } = await client.query<{ table_schema: string; table_name: string }>(
      `select table_schema, table_name from information_schema.tables
       where table_schema not in ('pg_catalog', 'information_schema') order by table_name`,
    )
    const bySchema: Record<string, string[]> = {}
    for (const row of rows) (bySchema[row.table_schema] ??= []).push(row.table_name)
    return bySchema
  } finally {
    await client.end()
  }
}

t.test(
  'the issuer and every service share one database, each with its own tables and migrations',
  { skip },
  async (t) => {
    const db = await testDatabase(t)
    const issuer = await openIssuerStore(db.url)
    t.teardown(() => issuer.close())
    // Started together, twice over: creating the schemas and migrating races with itself.
    const apps = [...services(db.url), ...services(db.url)]
    t.teardown(() => Promise.all(apps.map((app) => app.close())))
    await Promise.all(apps.map((app) => app.ready()))
    for (const app of apps) {
      const ready = await app.operations.inject({ url: '/readyz' })
      t.equal((ready.json() as { checks: Record<string, unknown> }).checks.store, true, 'the store answers')
    }
    const tables = await tablesBySchema(db.url)
    t.same(tables.profile, ['kysely_migration', 'kysely_migration_lock', 'profiles'])
    t.same(tables.orders, ['kysely_migration', 'kysely_migration_lock', 'orders'])
    t.same(tables.files, ['files', 'kysely_migration', 'kysely_migration_lock', 'used_links'])
    t.ok(tables.public?.includes('users'), "the issuer's tables stay in the default schema")
    t.notOk(tables.public?.includes('profiles'), 'no service table in the default schema')

    // A restart finds its own migrations done, whatever the others recorded.
    const again = services(db.url)
    t.teardown(() => Promise.all(again.map((app) => app.close())))
    await Promise.all(again.map((app) => app.ready()))
  },
)

t.test('a store that cannot be opened names the setting', { skip }, async (t) => {
  const [profile] = services('postgres://postgres@127.0.0.1:1/nowhere')
  t.teardown(() => profile!.close())
  await t.rejects(async () => profile!.ready(), {
    message: /^keygate: PROFILE_DATABASE_URL: cannot open the database: connect ECONNREFUSED/,
  })
})

t.test('a schema name is one PostgreSQL needs no quotes for', async (t) => {
  await t.rejects(openDatabase({ url: ':memory:', migrations: {}, schema: 'Robert"; drop' }), {
    message: /invalid schema name/,
  })
})
