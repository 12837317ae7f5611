/**
 * The orders service's configuration: the shared service settings, its store, how long it waits for
 * profile when it calls it on a user's behalf, and the client it exchanges the user's token with.
 */
import { Type } from '@sinclair/typebox'
import { type Config, DatabaseUrl, Duration, loadConfig } from '../../lib/config.js'
import { serviceSchema } from '../../lib/service.js'

/** Time limit of one call to profile (connect, headers and body). */
export const DEFAULT_PROFILE_TIMEOUT = '3s'

export const OrdersConfigSchema = serviceSchema({
  /** A SQLite file path, or `postgres://…`. Default: `${DATA_DIR}/orders.db`. */
  ORDERS_DATABASE_URL: DatabaseUrl(),
  ORDERS_PROFILE_TIMEOUT: Duration(DEFAULT_PROFILE_TIMEOUT),
  /**
   * Orders' own OAuth client at the issuer (token exchange for PROFILE_AUDIENCE). Both or neither; without
   * them orders relays the caller's own token to profile. `keygate start` registers one on first start.
   */
  ORDERS_CLIENT_ID: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  /** The client's secret (or ORDERS_CLIENT_SECRET_FILE). */
  ORDERS_CLIENT_SECRET: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
})

export type OrdersConfig = Config<typeof OrdersConfigSchema>

/** Reads and validates the orders service's configuration (environment, optional `KEYGATE_CONFIG` file). */
export function loadOrdersConfig(env?: Record<string, string | undefined>): OrdersConfig {
  const config = loadConfig(OrdersConfigSchema, env ? { env } : {})
  if ((config.ORDERS_CLIENT_ID === undefined) !== (config.ORDERS_CLIENT_SECRET === undefined)) {
    throw new Error(
      'keygate: invalid configuration: set ORDERS_CLIENT_ID and ORDERS_CLIENT_SECRET (or _FILE) together',
    )
  }
  return config
}
