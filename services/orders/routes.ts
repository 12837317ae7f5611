/**
 * `POST /orders`, `GET /orders`, `GET /orders/:id`: the caller's orders only. Creating an order asks
 * profile for the caller's display name on the caller's behalf; if profile cannot be asked (down, slow,
 * or no relayable identity) no order is created and the answer is 502 `KG_PROFILE_UNAVAILABLE`, so an
 * order never exists with a name silently missing and the client can simply retry.
 */
import { randomUUID } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { KeygateError } from '../../lib/errors.js'
import { verifiedCaller } from '../../lib/service.js'
import type { ProfileClient } from './profile-client.js'
import { ASSERTION_HEADER } from '../../lib/identity/constants.js'
import type { Order, OrderStore } from './store.js'

export const MAX_ITEM_CHARS = 100
export const MAX_QUANTITY = 1000

export interface OrderRoutesOptions {
  store: OrderStore
  profile: ProfileClient
  now: () => number
}

const OrderSchema = {
  type: 'object',
  required: ['id', 'owner', 'item', 'quantity', 'customerName', 'createdAt'],
  properties: {
    id: { type: 'string' },
    owner: { type: 'string' },
    item: { type: 'string' },
    quantity: { type: 'integer' },
    customerName: { type: ['string', 'null'] },
    createdAt: { type: 'string' },
  },
} as const

const CreateOrderSchema = {
  type: 'object',
  required: ['item', 'quantity'],
  additionalProperties: false,
  properties: {
    // Not blank, one line, no control characters or bidi overrides (it is shown back to people).
    item: {
      type: 'string',
      minLength: 1,
      maxLength: MAX_ITEM_CHARS,
      pattern: '^(?=.*\\S)[^\\p{Cc}\\p{Zl}\\p{Zp}\\u202A-\\u202E\\u2066-\\u2069]+$',
    },
    quantity: { type: 'integer', minimum: 1, maximum: MAX_QUANTITY },
  },
} as const

const OrderIdParamsSchema = {
  type: 'object',
  required: ['id'],
  additionalProperties: false,
  properties: {
    id: { type: 'string', pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' },
  },
} as const

export async function orderRoutes(app: FastifyInstance, options: OrderRoutesOptions): Promise<void> {
  const { store, profile, now } = options

  app.post<{ Body: { item: string; quantity: number } }>(
    '/orders',
    { schema: { body: CreateOrderSchema, response: { 201: OrderSchema } } },
    async (request, reply) => {
      const identity = verifiedCaller(request)
      const assertion = request.headers[ASSERTION_HEADER]
      const customerName = await profile.displayNameOf(identity, {
        requestId: request.id,
        log: request.log,
        // What orders legitimately holds for a caller who came through the gateway: the assertion to it.
        ...(identity.source === 'assertion' && typeof assertion === 'string' ? { assertion } : {}),
      })
      const order = await store.create({
        id: randomUUID(),
        owner: identity.principal,
        item: request.body.item,
        quantity: request.body.quantity,
        customer_name: customerName,
        created_at: now(),
      })
      request.log.info({ principal: identity.principal, order: order.id }, 'order created')
      return reply.code(201).send(order)
    },
  )

  app.get(
    '/orders',
    {
      schema: {
        response: { 200: { type: 'object', properties: { orders: { type: 'array', items: OrderSchema } } } },
      },
    },
    async (request): Promise<{ orders: Order[] }> => ({
      orders: await store.listFor(verifiedCaller(request).principal),
    }),
  )

  app.get<{ Params: { id: string } }>(
    '/orders/:id',
    { schema: { params: OrderIdParamsSchema, response: { 200: OrderSchema } } },
    async (request) => {
      const order = await store.findFor(verifiedCaller(request).principal, request.params.id)
      if (!order) throw new KeygateError('KG_NOT_FOUND', { message: 'No such order' })
      return order
    },
  )
}
