/**
 * The profile service's configuration: the shared service settings plus where its store lives.
 */
import { type Config, DatabaseUrl, loadConfig } from '../../lib/config.js'
import { serviceSchema } from '../../lib/service.js'

export const ProfileConfigSchema = serviceSchema({
  /** A SQLite file path, or `postgres://…`. Default: `${DATA_DIR}/profile.db`. */
  PROFILE_DATABASE_URL: DatabaseUrl(),
})

export type ProfileConfig = Config<typeof ProfileConfigSchema>

/** Reads and validates the profile service's configuration (environment, optional `KEYGATE_CONFIG` file). */
export function loadProfileConfig(env?: Record<string, string | undefined>): ProfileConfig {
  return loadConfig(ProfileConfigSchema, env ? { env } : {})
}
