/**
 * The issuer's entry point: builds the instance (which opens and closes its own store) and listens with
 * graceful shutdown.
 */
import type { FastifyInstance } from 'fastify'
import { startService } from '../../lib/service.js'
import { buildIssuer } from './app.js'
import type { IssuerConfig } from './config.js'

/**
 * Starts the issuer on HOST:ISSUER_PORT (ops listener on OPS_HOST:ISSUER_OPS_PORT); SIGTERM/SIGINT drain requests, then close the store.
 * @example
 * await startIssuer(loadIssuerConfig())
 */
export async function startIssuer(config: IssuerConfig): Promise<FastifyInstance> {
  return startService(buildIssuer({ config }), {
    host: config.HOST,
    port: config.ISSUER_PORT,
    ops: { host: config.OPS_HOST, port: config.ISSUER_OPS_PORT },
  })
}
