/**
 * The orders service's configuration: the shared service settings, its store, and how long it waits for
 * profile when it calls it on a user's behalf.
 */
import { type Config, DatabaseUrl, Duration, loadConfig } from '../../lib/config.js'
import { serviceSchema } from '../../lib/service.js'

/** Time limit of one call to profile (connect, headers and body). */
export const DEFAULT_PROFILE_TIMEOUT = '3s'

export const OrdersConfigSchema = serviceSchema({
  /** A SQLite file path, or `postgres://…`. Default: `${DATA_DIR}/orders.db`. */
  ORDERS_DATABASE_URL: DatabaseUrl(),
  ORDERS_PROFILE_TIMEOUT: Duration(DEFAULT_PROFILE_TIMEOUT),
})

export type OrdersConfig = Config<typeof OrdersConfigSchema>

/** Reads and validates the orders service's configuration (environment, optional `KEYGATE_CONFIG` file). */
export function loadOrdersConfig(env?: Record<string, string | undefined>): OrdersConfig {
  return loadConfig(OrdersConfigSchema, env ? { env } : {})
}
