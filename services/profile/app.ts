/**
 * `buildProfile(opts)`: the profile service as a Fastify instance that never listens (server.ts listens).
 * Callers reach it with an access token or a gateway assertion minted for `profile`; orders calls it on a
 * user's behalf by relaying that user's access token.
 */
import type { FastifyInstance } from 'fastify'
import { buildService, type ServiceOptions, storeUrl } from '../../lib/service.js'
import type { ProfileConfig } from './config.js'
import { profileRoutes } from './routes.js'
import { profileMigrations, ProfileStore, type ProfileTables } from './store.js'

export type BuildProfileOptions = ServiceOptions<ProfileConfig>

/**
 * Builds the profile service; its store opens when the instance loads.
 * @example
 * const app = buildProfile({ config: loadProfileConfig() })
 * await app.ready()
 */
export function buildProfile(options: BuildProfileOptions): FastifyInstance {
  const { config } = options
  return buildService<ProfileTables>(
    {
      name: 'profile',
      audience: config.PROFILE_AUDIENCE,
      databaseUrl: storeUrl(config, config.PROFILE_DATABASE_URL, 'profile'),
      migrations: profileMigrations,
      routes: async (app, { db, now }) => {
        await app.register(profileRoutes, { store: new ProfileStore(db), now })
      },
    },
    options,
  )
}
