/** `POST /api/orders` and `GET /api/orders` (orders asks profile for your name, on your behalf). */
import { json, type Demo } from './api.js'
import { byId, fields, table } from './dom.js'

interface Order {
  id: string
  item: string
  quantity: number
  customerName: string | null
  createdAt: string
}

export function setUpOrdersPage(demo: Demo): () => Promise<void> {
  const load = async () => {
    const { orders } = await demo.call<{ orders: Order[] }>('/api/orders')
    byId('orders-list').replaceChildren(
      table(
        ['Created', 'Item', 'Quantity', 'Customer'],
        orders.map((o) => [o.createdAt, o.item, String(o.quantity), o.customerName ?? '–']),
        'No orders yet.',
      ),
    )
  }
  const form = byId<HTMLFormElement>('order-form')
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    const { item = '', quantity = '1' } = fields(form)
    void demo.attempt(async () => {
      const order = await demo.call<Order>('/api/orders', json('POST', { item, quantity: Number(quantity) }))
      await load()
      demo.say(`Order placed: ${order.quantity} × ${order.item}.`)
    })
  })
  byId('orders-reload').addEventListener('click', () => void demo.attempt(load))
  return load
}
