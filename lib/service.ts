/**
 * The skeleton every downstream service (profile, orders, files) is built on: Fastify with keygate's
 * defaults, the error catalogue, the HTTP hygiene of API answers (lib/server.ts), the operations routes, the verification plugin (access tokens from the
 * issuer, assertions from the gateway, identity required unless a route says otherwise) and the service's
 * own SQL store, opened at start, checked by `/readyz` and closed with the instance.
 */
import { join } from 'node:path'
import { Type } from '@sinclair/typebox'
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify'
import { type Kysely, type Migration, sql } from 'kysely'
import { auth, type Identity } from '@keygate/fastify-auth'
import { AuthConfigSchema, authOptionsFromConfig } from './auth-config.js'
import { type Component, componentSchema, type Config } from './config.js'
import { openDatabase } from './db.js'
import { registerErrorHandling } from './errors.js'
import { operations } from './operations.js'
import {
  createLogger,
  listen,
  type ListenOptions,
  listenerTimeouts,
  registerHttpHygiene,
  serverOptions,
  trustedProxies,
} from './server.js'

/** The components built with this skeleton. */
export type ServiceName = Exclude<Component, 'issuer' | 'gateway'>

/** Settings every service shares under one name (they sit behind the same gateway). */
const ServiceCommonSchema = {
  /**
   * Addresses and CIDR ranges (comma list) of the proxies in front — the gateway — whose X-Forwarded-For
   * is believed for the client address in logs. Default: none (`keygate start` sets the local gateway's).
   */
  SERVICE_TRUST_PROXY: Type.String({ default: '' }),
}

/**
 * A service's config schema: the common settings, the verification plugin's, then its own.
 * @example
 * export const ProfileConfigSchema = serviceSchema({ PROFILE_DATABASE_URL: Type.Optional(Type.String()) })
 */
export function serviceSchema<P extends Parameters<typeof componentSchema>[0]>(properties: P) {
  return componentSchema({ ...AuthConfigSchema, ...ServiceCommonSchema, ...properties })
}

/** What the skeleton reads from any service's config (each service's own config is a superset). */
export type ServiceConfig = Config<ReturnType<typeof serviceSchema<Record<never, never>>>>

/** The options every `buildX()` of a service takes. */
export interface ServiceOptions<C extends ServiceConfig = ServiceConfig> {
  config: C
  /** Defaults to the component's own logger (LOG_LEVEL, LOG_PRETTY). */
  logger?: FastifyBaseLogger
  /** Milliseconds since the epoch; default `Date.now`. Tests pass a clock they move. */
  now?: () => number
}

/** What a service's routes are registered with. */
export interface ServiceContext<DB> {
  db: Kysely<DB>
  now: () => number
}

export interface ServiceDefinition<DB> {
  name: ServiceName
  /** The service's own access-token audience (PROFILE_AUDIENCE, …), accepted beside API_AUDIENCE. */
  audience: string
  /** A SQLite file (or `postgres://…`); see `storeUrl()`. */
  databaseUrl: string
  migrations: Record<string, Migration>
  /** Largest request body of any route, in bytes (routes may lower it). Default: lib/server.ts's. */
  bodyLimit?: number
  /** Registers the service's routes (and anything else it opens, closed in its own onClose hooks). */
  routes(app: FastifyInstance, context: ServiceContext<DB>): Promise<void>
}

/**
 * Where a service keeps its data: the URL its config names, else `${DATA_DIR}/<name>.db`.
 * @example
 * storeUrl(config, config.PROFILE_DATABASE_URL, 'profile') // 'data/profile.db'
 */
export function storeUrl(config: { DATA_DIR: string }, configured: string | undefined, name: ServiceName) {
  return configured ?? join(config.DATA_DIR, `${name}.db`)
}

/**
 * Builds a service instance (it never listens). The store opens while the instance loads, so
 * `await app.ready()` (or `listen()`) reports a store that cannot be opened.
 * @example
 * const app = buildService({ name: 'profile', databaseUrl, migrations, routes: profileRoutes }, { config })
 */
export function buildService<DB>(
  definition: ServiceDefinition<DB>,
  options: ServiceOptions,
): FastifyInstance {
  const { config } = options
  const now = options.now ?? Date.now
  const logger =
    options.logger ??
    createLogger({ name: definition.name, level: config.LOG_LEVEL, pretty: config.LOG_PRETTY })
  const app = Fastify(
    serverOptions({
      logger,
      trustProxy: trustedProxies(config.SERVICE_TRUST_PROXY, 'SERVICE_TRUST_PROXY'),
      timeouts: listenerTimeouts(config),
      // Answers below 400 at debug, refusals and failures at info (FailuresLogController): two lines per
      // request cost more than the store read and the verification together on `GET /me` (measured, see
      // docs/benchmarks.md, "Optimisations this round"). Every write a service makes has its own
      // info line in its route ('display name updated', 'order created', …).
      requestLog: 'failures',
      ...(definition.bodyLimit ? { bodyLimit: definition.bodyLimit } : {}),
    }),
  )
  registerErrorHandling(app)
  registerHttpHygiene(app, { apiAnswers: true })
  app.register(operations, { component: definition.name })
  app.register(auth, {
    ...authOptionsFromConfig(config, { serviceAudience: definition.audience }),
    // Assertions are accepted only from our gateway, and only those minted for this service.
    gateway: { issuer: config.GATEWAY_URL, audience: definition.name },
    defaultAuth: { mode: 'required' },
    now,
  })
  app.register(async function service(instance) {
    // On PostgreSQL each service keeps to its own schema (named after it): one database serves them all.
    const db = await openDatabase<DB>({
      url: definition.databaseUrl,
      migrations: definition.migrations,
      schema: definition.name,
      setting: `${definition.name.toUpperCase()}_DATABASE_URL`,
    })
    instance.addHook('onClose', () => db.destroy())
    app.readiness.add('store', async (): Promise<true> => {
      await sql`select 1`.execute(db)
      return true
    })
    await definition.routes(instance, { db, now })
  })
  return app
}

/**
 * The verified caller of a route that requires identity (every route of a service unless it says
 * otherwise): the auth plugin has set it before the handler runs, so its absence is a server fault.
 */
export function verifiedCaller(request: FastifyRequest): Identity {
  if (!request.identity) throw new Error('keygate: a route that needs identity ran without a verified caller')
  return request.identity
}

/**
 * Listens on `host:port` and its ops listener on `ops`, with graceful shutdown (closing the instance closes
 * its store and pools). If listening fails, the instance is closed before the error is rethrown.
 */
export async function startService(app: FastifyInstance, address: ListenOptions) {
  try {
    await listen(app, address)
  } catch (err) {
    await app.close().catch(() => {})
    throw err
  }
  return app
}
