import { join } from 'node:path'
import t, { type Test } from 'tap'
import { openDatabase } from '../../../lib/db.js'
import { orderMigrations, OrderStore, type OrderTables } from '../../../services/orders/store.js'
import { postgresUnavailable, testDatabase } from '../../helpers/postgres.js'
import { tempDir } from '../../helpers/services.js'

async function storeContract(t: Test, url: string) {
  const db = await openDatabase<OrderTables>({ url, migrations: orderMigrations })
  t.teardown(() => db.destroy())
  const store = new OrderStore(db)
  const order = (id: string, owner: string) => ({
    id,
    owner,
    item: `item ${id}`,
    quantity: 2,
    customer_name: owner === 'alice' ? 'Alice' : null,
    created_at: 1_000, // one millisecond for all: the order of insertion decides
  })
  t.same(await store.create(order('o1', 'alice')), {
    id: 'o1',
    owner: 'alice',
    item: 'item o1',
    quantity: 2,
    customerName: 'Alice',
    createdAt: new Date(1_000).toISOString(),
  })
  await store.create(order('o2', 'bob'))
  await store.create(order('o3', 'alice'))
  t.same(
    (await store.listFor('alice')).map((o) => o.id),
    ['o3', 'o1'],
  )
  t.same(
    (await store.listFor('bob')).map((o) => [o.id, o.customerName]),
    [['o2', null]],
  )
  t.equal((await store.findFor('alice', 'o1'))?.id, 'o1')
  t.equal(await store.findFor('bob', 'o1'), undefined, "another owner's order")
  await t.rejects(store.create(order('o1', 'bob')), { message: /UNIQUE|duplicate key/ }, 'ids are unique')
}

t.test('on SQLite', async (t) => storeContract(t, join(tempDir(t), 'orders.db')))

t.test('on PostgreSQL', { skip: await postgresUnavailable() }, async (t) => {
  const database = await testDatabase(t)
  await storeContract(t, database.url)
})
