/**
 * The files service's configuration: the shared service settings, its store, the upload size limit, the
 * per-user quota and the one-time download links (lifetime and signing secret).
 */
import { Type } from '@sinclair/typebox'
import { type Config, DatabaseUrl, Duration, loadConfig } from '../../lib/config.js'
import { serviceSchema } from '../../lib/service.js'

/** Largest file accepted, in bytes (10 MiB). */
export const DEFAULT_FILES_MAX_BYTES = 10 * 1024 * 1024
/** Upper bound of FILES_MAX_BYTES, in bytes: files are held in memory while stored and served. */
export const FILES_MAX_BYTES_LIMIT = 256 * 1024 * 1024
/** What one user may store in all, in bytes (100 MiB: ten files of the default largest size). */
export const DEFAULT_FILES_QUOTA_BYTES = 100 * 1024 * 1024
/** How many files one user may store. */
export const DEFAULT_FILES_QUOTA_COUNT = 1000
/** Lifetime of a one-time download link. */
export const DEFAULT_FILES_LINK_TTL = '60s'
/** Bounds of FILES_LINK_TTL: a link is for handing over a file now, not for sharing. */
export const MIN_FILES_LINK_TTL = '1s'
export const MAX_FILES_LINK_TTL = '1h'
/** Shortest FILES_LINK_SECRET, in characters (HS256 wants at least 256 bits). */
export const MIN_LINK_SECRET_CHARS = 32

export const FilesConfigSchema = serviceSchema({
  /** A SQLite file path, or `postgres://…`. Default: `${DATA_DIR}/files.db`. */
  FILES_DATABASE_URL: DatabaseUrl(),
  FILES_MAX_BYTES: Type.Integer({
    minimum: 0,
    maximum: FILES_MAX_BYTES_LIMIT,
    default: DEFAULT_FILES_MAX_BYTES,
  }),
  /** Per-user total of stored bytes; an upload past it is refused (413 `KG_QUOTA_EXCEEDED`). */
  FILES_QUOTA_BYTES: Type.Integer({
    minimum: 0,
    maximum: Number.MAX_SAFE_INTEGER,
    default: DEFAULT_FILES_QUOTA_BYTES,
  }),
  /** Per-user number of files; a new file past it is refused (413 `KG_QUOTA_EXCEEDED`). */
  FILES_QUOTA_COUNT: Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1, default: DEFAULT_FILES_QUOTA_COUNT }),
  /** Lifetime of a one-time download link (milliseconds once loaded). */
  FILES_LINK_TTL: Duration(DEFAULT_FILES_LINK_TTL, { min: MIN_FILES_LINK_TTL, max: MAX_FILES_LINK_TTL }),
  /** HS256 secret of download links; default: generated once in `${DATA_DIR}/files-link.secret` (0600). */
  FILES_LINK_SECRET: Type.Optional(Type.String({ minLength: MIN_LINK_SECRET_CHARS })),
})

export type FilesConfig = Config<typeof FilesConfigSchema>

/** Reads and validates the files service's configuration (environment, optional `KEYGATE_CONFIG` file). */
export function loadFilesConfig(env?: Record<string, string | undefined>): FilesConfig {
  return loadConfig(FilesConfigSchema, env ? { env } : {})
}
