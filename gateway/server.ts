/**
 * The gateway's entry point: build it from config and listen, with graceful shutdown (in-flight proxied
 * requests drain, then the upstream pools close).
 */
import type { FastifyInstance } from 'fastify'
import { listen } from '../lib/server.js'
import { buildGateway } from './app.js'
import type { GatewayConfig } from './config.js'

/**
 * Builds and starts the gateway on `HOST:GATEWAY_PORT`, its ops listener on `OPS_HOST:GATEWAY_OPS_PORT`;
 * resolves with the listening instance.
 * @example
 * const app = await startGateway(loadGatewayConfig())
 */
export async function startGateway(config: GatewayConfig): Promise<FastifyInstance> {
  const app = await buildGateway({ config })
  const addresses = await listen(app, {
    host: config.HOST,
    port: config.GATEWAY_PORT,
    ops: { host: config.OPS_HOST, port: config.GATEWAY_OPS_PORT },
  })
  app.log.info(addresses, 'gateway listening')
  return app
}
