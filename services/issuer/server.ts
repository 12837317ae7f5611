/**
 * The issuer's entry point: opens its store, builds the instance and listens with graceful shutdown.
 */
import type { FastifyInstance } from 'fastify'
import { createLogger, listen } from '../../lib/server.js'
import { buildIssuer } from './app.js'
import { type IssuerConfig, issuerSettings } from './config.js'
import { openIssuerStore } from './store/kysely-store.js'

/**
 * Starts the issuer on HOST:ISSUER_PORT (ops listener on OPS_HOST:ISSUER_OPS_PORT); SIGTERM/SIGINT drain requests, then close the store.
 * @example
 * await startIssuer(loadIssuerConfig())
 */
export async function startIssuer(config: IssuerConfig): Promise<FastifyInstance> {
  const settings = issuerSettings(config)
  const logger = createLogger({ name: 'issuer', level: config.LOG_LEVEL, pretty: config.LOG_PRETTY })
  const store = await openIssuerStore(settings.databaseUrl)
  const app = buildIssuer({ config, logger, store })
  try {
    await listen(app, {
      host: config.HOST,
      port: config.ISSUER_PORT,
      ops: { host: config.OPS_HOST, port: config.ISSUER_OPS_PORT },
      onClose: () => store.close(),
    })
  } catch (err) {
    await app.close().catch(() => {})
    await store.close()
    throw err
  }
  return app
}
