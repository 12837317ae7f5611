/**
 * The files service's entry point: builds the instance and listens with graceful shutdown.
 */
import type { FastifyInstance } from 'fastify'
import { startService } from '../../lib/service.js'
import { buildFiles } from './app.js'
import type { FilesConfig } from './config.js'

/**
 * Starts files on HOST:FILES_PORT (ops listener on OPS_HOST:FILES_OPS_PORT); SIGTERM/SIGINT drain requests, then close the store.
 * @example
 * await startFiles(loadFilesConfig())
 */
export async function startFiles(config: FilesConfig): Promise<FastifyInstance> {
  return startService(buildFiles({ config }), {
    host: config.HOST,
    port: config.FILES_PORT,
    ops: { host: config.OPS_HOST, port: config.FILES_OPS_PORT },
  })
}
