/**
 * The orders service's entry point: builds the instance and listens with graceful shutdown.
 */
import type { FastifyInstance } from 'fastify'
import { startService } from '../../lib/service.js'
import { buildOrders } from './app.js'
import type { OrdersConfig } from './config.js'

/**
 * Starts orders on HOST:ORDERS_PORT (ops listener on OPS_HOST:ORDERS_OPS_PORT); SIGTERM/SIGINT drain requests, then close the store and the pool.
 * @example
 * await startOrders(loadOrdersConfig())
 */
export async function startOrders(config: OrdersConfig): Promise<FastifyInstance> {
  return startService(buildOrders({ config }), {
    host: config.HOST,
    port: config.ORDERS_PORT,
    ops: { host: config.OPS_HOST, port: config.ORDERS_OPS_PORT },
  })
}
