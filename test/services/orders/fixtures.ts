/**
 * Orders tests run against a real profile listening on port 0, so orders → profile crosses a real HTTP
 * boundary with the identity orders relays. `seen` records who profile believed each call came from.
 */
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { buildOrders } from '../../../services/orders/app.js'
import { loadOrdersConfig } from '../../../services/orders/config.js'
import { buildProfile } from '../../../services/profile/app.js'
import { loadProfileConfig } from '../../../services/profile/config.js'
import { captureLogs } from '../../helpers/logs.js'
import { listenOnFreePort, type ServiceWorld, startServiceWorld } from '../../helpers/services.js'

/** What profile saw of one request. */
export interface ProfileSighting {
  sub: string | undefined
  source: string | undefined
  status: number
  headers: Record<string, string | string[] | undefined>
}

export interface OrdersFixture {
  world: ServiceWorld
  orders: FastifyInstance
  profile: FastifyInstance
  profileUrl: string
  seen: ProfileSighting[]
  logs: { orders: ReturnType<typeof captureLogs>; profile: ReturnType<typeof captureLogs> }
}

/** A real profile on port 0 and an orders instance (not listening) configured to call it. */
export async function startOrdersWithProfile(
  t: Test,
  env: Record<string, string> = {},
  world?: ServiceWorld,
): Promise<OrdersFixture> {
  const w = world ?? (await startServiceWorld(t))
  const logs = { orders: captureLogs('orders'), profile: captureLogs('profile') }
  const profile = buildProfile({ config: loadProfileConfig(w.env), logger: logs.profile.logger })
  const seen: ProfileSighting[] = []
  profile.addHook('onResponse', async (request, reply) => {
    if (request.method !== 'GET' || request.url !== '/me') return
    seen.push({
      sub: request.identity?.subject,
      source: request.identity?.source,
      status: reply.statusCode,
      headers: request.headers,
    })
  })
  const profileUrl = await listenOnFreePort(t, profile)
  const orders = buildOrders({
    config: loadOrdersConfig({ ...w.env, PROFILE_URL: profileUrl, ...env }),
    logger: logs.orders.logger,
  })
  t.teardown(() => orders.close())
  await orders.ready()
  await Promise.all([orders.auth.ready(), profile.auth.ready()])
  return { world: w, orders, profile, profileUrl, seen, logs }
}

export const json = { 'content-type': 'application/json' }
