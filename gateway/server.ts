/**
 * The gateway's entry point: build it from config and listen, with graceful shutdown (in-flight proxied
 * requests drain, then the upstream pools close).
 */
import { listen } from '../lib/server.js'
import { buildGateway } from './app.js'
import type { GatewayConfig } from './config.js'

/**
 * Builds and starts the gateway on `HOST:GATEWAY_PORT`; resolves with its address.
 * @example
 * await startGateway(loadGatewayConfig())
 */
export async function startGateway(config: GatewayConfig): Promise<string> {
  const app = await buildGateway({ config })
  return listen(app, { host: config.HOST, port: config.GATEWAY_PORT })
}
