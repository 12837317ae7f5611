/**
 * `buildFiles(opts)`: the files service as a Fastify instance that never listens (server.ts listens).
 * It stores each caller's files and hands out one-time download links it verifies itself.
 */
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { loadOrCreateSecret } from '../../lib/secrets.js'
import { buildService, type ServiceOptions, storeUrl } from '../../lib/service.js'
import { type FilesConfig, MIN_LINK_SECRET_CHARS } from './config.js'
import { registerDownloadLinks } from './download-links.js'
import { downloadRoute } from './download-route.js'
import { fileRoutes } from './routes.js'
import { fileMigrations, FileStore, type FileTables } from './store.js'

/** Name of the generated link secret inside DATA_DIR. */
export const LINK_SECRET_FILE_NAME = 'files-link.secret'

export type BuildFilesOptions = ServiceOptions<FilesConfig>

/**
 * The secret download links are signed with: FILES_LINK_SECRET, else one generated on first start and
 * kept (0600) in DATA_DIR, so links issued before a restart still work after it.
 */
export function linkSecret(config: Pick<FilesConfig, 'FILES_LINK_SECRET' | 'DATA_DIR'>): string {
  if (config.FILES_LINK_SECRET !== undefined) return config.FILES_LINK_SECRET
  const file = join(config.DATA_DIR, LINK_SECRET_FILE_NAME)
  const secret = loadOrCreateSecret(file)
  // A hand-edited or truncated file must not quietly weaken every link.
  if (secret.length < MIN_LINK_SECRET_CHARS) {
    throw new Error(
      `keygate files: ${file} holds fewer than ${MIN_LINK_SECRET_CHARS} characters; delete it to regenerate`,
    )
  }
  return secret
}

/**
 * Builds the files service; its store opens and its link secret is read when the instance loads.
 * @example
 * const app = buildFiles({ config: loadFilesConfig() })
 * await app.ready()
 */
export function buildFiles(options: BuildFilesOptions): FastifyInstance {
  const { config } = options
  return buildService<FileTables>(
    {
      name: 'files',
      audience: config.FILES_AUDIENCE,
      databaseUrl: storeUrl(config, config.FILES_DATABASE_URL, 'files'),
      migrations: fileMigrations,
      routes: async (app, { db, now }) => {
        const store = new FileStore(db, { bytes: config.FILES_QUOTA_BYTES, count: config.FILES_QUOTA_COUNT })
        const links = await registerDownloadLinks(app, {
          secret: linkSecret(config),
          issuer: config.FILES_URL,
          ttlMs: config.FILES_LINK_TTL,
          now,
        })
        await app.register(fileRoutes, {
          store,
          links,
          maxBytes: config.FILES_MAX_BYTES,
          publicUrl: config.PUBLIC_URL,
          now,
        })
        await app.register(downloadRoute, { store, links, now })
      },
    },
    options,
  )
}
