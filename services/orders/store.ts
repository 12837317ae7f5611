/**
 * The orders store. `seq` orders rows by insertion, so "newest first" holds even for orders created in
 * the same millisecond; `id` is the random public identifier. Times are integer milliseconds.
 */
import type { Generated, Kysely, Migration } from 'kysely'
import { dialectOf } from '../../lib/db.js'

export interface OrderTables {
  orders: {
    seq: Generated<number>
    id: string
    owner: string
    item: string
    quantity: number
    customer_name: string | null
    created_at: number
  }
}

export const orderMigrations: Record<string, Migration> = {
  '0001-orders': {
    async up(db: Kysely<unknown>) {
      const postgres = dialectOf(db) === 'postgres'
      await db.schema
        .createTable('orders')
        .addColumn('seq', postgres ? 'bigint' : 'integer', (c) =>
          postgres ? c.primaryKey().generatedAlwaysAsIdentity() : c.primaryKey().autoIncrement(),
        )
        .addColumn('id', 'text', (c) => c.notNull().unique())
        .addColumn('owner', 'text', (c) => c.notNull())
        .addColumn('item', 'text', (c) => c.notNull())
        .addColumn('quantity', 'integer', (c) => c.notNull())
        .addColumn('customer_name', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute()
      await db.schema.createIndex('orders_owner_seq').on('orders').columns(['owner', 'seq']).execute()
    },
  },
}

/** An order as the API shows it. */
export interface Order {
  id: string
  owner: string
  item: string
  quantity: number
  /** The owner's display name at the time of the order, as profile knew it (null if none was set). */
  customerName: string | null
  /** ISO 8601. */
  createdAt: string
}

type OrderRow = Omit<OrderTables['orders'], 'seq'>

/** Orders, always looked up within one owner's. */
export class OrderStore {
  readonly #db: Kysely<OrderTables>

  constructor(db: Kysely<OrderTables>) {
    this.#db = db
  }

  async create(row: OrderRow): Promise<Order> {
    await this.#db.insertInto('orders').values(row).execute()
    return toOrder(row)
  }

  /** The owner's orders, newest first. */
  async listFor(owner: string): Promise<Order[]> {
    const rows = await this.#db
      .selectFrom('orders')
      .select(['id', 'owner', 'item', 'quantity', 'customer_name', 'created_at'])
      .where('owner', '=', owner)
      .orderBy('seq', 'desc')
      .execute()
    return rows.map(toOrder)
  }

  /** The order, if it exists and belongs to `owner` (another's order is as absent as a missing one). */
  async findFor(owner: string, id: string): Promise<Order | undefined> {
    const row = await this.#db
      .selectFrom('orders')
      .select(['id', 'owner', 'item', 'quantity', 'customer_name', 'created_at'])
      .where('id', '=', id)
      .where('owner', '=', owner)
      .executeTakeFirst()
    return row && toOrder(row)
  }
}

function toOrder(row: OrderRow): Order {
  return {
    id: row.id,
    owner: row.owner,
    item: row.item,
    quantity: Number(row.quantity),
    customerName: row.customer_name,
    createdAt: new Date(Number(row.created_at)).toISOString(),
  }
}
