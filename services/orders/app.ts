/**
 * `buildOrders(opts)`: the orders service as a Fastify instance that never listens (server.ts listens).
 * It keeps each caller's orders and calls profile on the caller's behalf (see profile-client.ts).
 */
import type { FastifyInstance } from 'fastify'
import { buildService, type ServiceOptions, storeUrl } from '../../lib/service.js'
import type { OrdersConfig } from './config.js'
import { ProfileClient } from './profile-client.js'
import { orderRoutes } from './routes.js'
import { TokenExchange } from './token-exchange.js'
import { orderMigrations, OrderStore, type OrderTables } from './store.js'

export type BuildOrdersOptions = ServiceOptions<OrdersConfig>

/**
 * Builds the orders service; its store opens and its pool to profile is created when the instance loads.
 * @example
 * const app = buildOrders({ config: loadOrdersConfig() })
 * await app.ready()
 */
export function buildOrders(options: BuildOrdersOptions): FastifyInstance {
  const { config } = options
  const timeoutMs = config.ORDERS_PROFILE_TIMEOUT
  return buildService<OrderTables>(
    {
      name: 'orders',
      audience: config.ORDERS_AUDIENCE,
      databaseUrl: storeUrl(config, config.ORDERS_DATABASE_URL, 'orders'),
      migrations: orderMigrations,
      routes: async (app, { db, now }) => {
        const exchange =
          config.ORDERS_CLIENT_ID === undefined || config.ORDERS_CLIENT_SECRET === undefined
            ? undefined
            : new TokenExchange({
                issuerUrl: config.ISSUER_URL,
                clientId: config.ORDERS_CLIENT_ID,
                clientSecret: config.ORDERS_CLIENT_SECRET,
                audience: config.PROFILE_AUDIENCE,
                timeoutMs,
                now,
              })
        if (!exchange) {
          app.log.warn(
            "ORDERS_CLIENT_ID is not set: orders relays the caller's own token to profile (no token exchange); through the gateway that needs forward.token on its route",
          )
        }
        const profile = new ProfileClient({ url: config.PROFILE_URL, timeoutMs, exchange })
        app.addHook('onClose', () => profile.close())
        // Not ready until profile has answered once; later outages only fail creations (502), so a
        // profile blip does not take listing orders out of rotation.
        app.readiness.add('profile', async () =>
          (await profile.reachable()) ? true : 'profile is not reachable yet',
        )
        await app.register(orderRoutes, { store: new OrderStore(db), profile, now })
      },
    },
    options,
  )
}
