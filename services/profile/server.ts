/**
 * The profile service's entry point: builds the instance and listens with graceful shutdown.
 */
import type { FastifyInstance } from 'fastify'
import { startService } from '../../lib/service.js'
import { buildProfile } from './app.js'
import type { ProfileConfig } from './config.js'

/**
 * Starts profile on HOST:PROFILE_PORT (ops listener on OPS_HOST:PROFILE_OPS_PORT); SIGTERM/SIGINT drain requests, then close the store.
 * @example
 * await startProfile(loadProfileConfig())
 */
export async function startProfile(config: ProfileConfig): Promise<FastifyInstance> {
  return startService(buildProfile({ config }), {
    host: config.HOST,
    port: config.PROFILE_PORT,
    ops: { host: config.OPS_HOST, port: config.PROFILE_OPS_PORT },
  })
}
