/**
 * Every component on one PostgreSQL database (a throwaway one per run): the issuer in the default schema,
 * each service in its own, so no component's migrations look like another's ("corrupted migrations"), and a
 * store that cannot be opened names the setting. Skipped with a message without PostgreSQL, unless
 * KEYGATE_REQUIRE_POSTGRES=1. On SQLite, prepared statements are kept per SQL text and still see the
 * transaction they run in; a precompiled query binds its values where its placeholders landed, on both.
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import type { FastifyInstance } from 'fastify'
import { type Kysely, type Migration, sql } from 'kysely'
import pg from 'pg'
import t, { type Test } from 'tap'
import { openDatabase, precompile, writeTransaction } from '../../lib/db.js'
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

interface ItemTables {
  items: { id: string; n: number; note: string | null }
}

const itemMigrations: Record<string, Migration> = {
  '0001-items': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('items')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('n', 'bigint', (c) => c.notNull())
        .addColumn('note', 'text')
        .execute()
    },
  },
}

async function itemsDatabase(t: Test, url: string): Promise<Kysely<ItemTables>> {
  const db = await openDatabase<ItemTables>({ url, migrations: itemMigrations })
  t.teardown(() => db.destroy())
  return db
}

t.test('SQLite: one prepared statement per SQL text, and it sees the transaction it runs in', async (t) => {
  const prepared: string[] = []
  const prepare = Database.prototype.prepare
  Database.prototype.prepare = function (this: Database.Database, source: string) {
    prepared.push(source)
    return prepare.call(this, source)
  } as typeof prepare
  t.teardown(() => {
    Database.prototype.prepare = prepare
  })
  const db = await itemsDatabase(t, join(mkdtempSync(join(tmpdir(), 'kg-db-')), 'items.db'))
  const count = async (on: Kysely<ItemTables>) =>
    Number(
      (
        await on
          .selectFrom('items')
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    )

  prepared.length = 0
  for (let i = 0; i < 3; i++)
    await db
      .insertInto('items')
      .values({ id: `a${i}`, n: i, note: null })
      .execute()
  t.equal(await count(db), 3)
  t.equal(await count(db), 3)
  t.same(new Set(prepared).size, prepared.length, 'each SQL text prepared once')
  t.equal(prepared.length, 2, 'the insert and the count')

  await t.rejects(
    writeTransaction(db, async (trx) => {
      await trx.insertInto('items').values({ id: 'b', n: 9, note: null }).execute()
      t.equal(await count(trx), 4, "the reused statement sees the transaction's own write")
      throw new Error('roll back')
    }),
    { message: 'roll back' },
  )
  t.equal(await count(db), 3, 'and not after the rollback')
  await writeTransaction(db, (trx) => trx.insertInto('items').values({ id: 'c', n: 9, note: null }).execute())
  t.equal(await count(db), 4, 'nor misses a commit')
  t.same(
    prepared.slice(2),
    ['begin immediate', 'rollback', 'commit'],
    'only the transaction statements were new, each prepared once',
  )
})

const precompiledContract = async (t: Test, url: string) => {
  const db = await itemsDatabase(t, url)
  await db.insertInto('items').values({ id: 'x', n: 1, note: 'kept' }).execute()
  // The placeholders in another order than the compiled SQL takes them, beside a constant parameter.
  const bump = precompile({ id: '\0id', n: -1 }, (p) =>
    db.updateTable('items').set({ n: p.n, note: 'bumped' }).where('id', '=', p.id),
  )
  const result = await db.executeQuery(bump.bind({ id: 'x', n: 42 }))
  t.equal(result.numAffectedRows, 1n)
  t.same(await db.selectFrom('items').selectAll().execute(), [{ id: 'x', n: 42, note: 'bumped' }])
  await writeTransaction(db, (trx) => trx.executeQuery(bump.bind({ id: 'x', n: 43 })))
  t.equal(
    (await db.selectFrom('items').select('n').executeTakeFirstOrThrow()).n,
    43,
    'inside a transaction too',
  )
  t.throws(
    () => precompile({ id: '\0id', n: -1 }, (p) => db.selectFrom('items').selectAll().where('id', '=', p.id)),
    { message: /placeholder n is not one parameter of select/ },
  )
  t.throws(
    () =>
      precompile({ id: '\0id' }, (p) => db.selectFrom('items').selectAll().where('id', 'in', [p.id, p.id])),
    { message: /placeholder id is not one parameter/ },
    'nor one used twice',
  )
  await sql`drop table items`.execute(db)
}

t.test('a precompiled query binds each value where its placeholder landed: SQLite', async (t) => {
  await precompiledContract(t, ':memory:')
})

t.test(
  'a precompiled query binds each value where its placeholder landed: PostgreSQL',
  { skip },
  async (t) => {
    const db = await testDatabase(t)
    await precompiledContract(t, db.url)
  },
)
