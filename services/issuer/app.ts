/**
 * `buildIssuer(opts)`: the issuer as a Fastify instance that never listens (server.ts listens). It signs
 * access tokens with a scheduled key set, publishes the JWKS, runs accounts, sessions and the admin API,
 * and serves the revocation feed to verifiers. Several instances may share one PostgreSQL database: they
 * share the key set, take turns at key maintenance, and each serves every instance's revocations.
 */
import cookie from '@fastify/cookie'
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { auth } from '@keygate/fastify-auth'
import { registerErrorHandling } from '../../lib/errors.js'
import { connectRedis } from '../../lib/redis.js'
import { operations } from '../../lib/operations.js'
import { createLogger, listenerTimeouts, registerHttpHygiene, serverOptions } from '../../lib/server.js'
import { AccessTokenMinter } from './access-tokens.js'
import { Accounts } from './accounts.js'
import { CLOCK_SKEW_MS, type IssuerConfig, type IssuerSettings, issuerSettings } from './config.js'
import { IssuerFeed } from './feed/issuer-feed.js'
import { Revocations } from './feed/revocations.js'
import { KeyAdministration } from './keys/key-administration.js'
import { keyStorageFor } from './keys/configured-key-storage.js'
import { KeySet } from './keys/key-set.js'
import { EmailCodes } from './email-codes.js'
import { ExternalLogin } from './external-login.js'
import { LoginThrottle } from './login-throttle.js'
import { MailDelivery } from './mail/mail-delivery.js'
import { createIssuerMetrics, watchIssuerFeed } from './metrics.js'
import { PasswordHashing } from './password-hashing.js'
import { RedisThrottleCounters } from './redis-throttle-counters.js'
import { RegistrationThrottle } from './registration-throttle.js'
import { ClientAuthentication } from './oauth/client-authentication.js'
import { Clients } from './oauth/clients.js'
import { Grants } from './oauth/grants.js'
import { GatewayAssertions } from './oauth/gateway-assertions.js'
import { IssuedTokens } from './oauth/issued-tokens.js'
import { TokenStatus } from './oauth/token-status.js'
import { adminRoutes } from './routes/admin.js'
import { adminClientRoutes } from './routes/admin-clients.js'
import { authRoutes } from './routes/auth.js'
import { emailCodeRoutes } from './routes/email-code.js'
import { externalRoutes } from './routes/external.js'
import { loginMethodRoutes } from './routes/login-methods.js'
import { feedRoutes } from './routes/feed.js'
import { oauthRoutes, TOKEN_PATH } from './routes/oauth.js'
import { wellKnownRoutes } from './routes/well-known.js'
import { MaintenanceScheduler } from './scheduler.js'
import { Sessions } from './sessions.js'
import { openIssuerStore } from './store/issuer-store.js'
import type { IssuerStore } from './store/types.js'

/**
 * How long the issuer may take to load, in milliseconds (Fastify's default is 10 s). Loading opens and
 * migrates the database, generates two RSA keys on first start and hashes the admin's password: honest
 * work that a loaded machine can stretch past the default, where a slow start should not be a failed one.
 */
export const ISSUER_LOAD_TIMEOUT_MS = 60_000

export interface BuildIssuerOptions {
  config: IssuerConfig
  logger?: FastifyBaseLogger
  /** Current time in milliseconds; default `Date.now`. Tests pass a fake clock. */
  now?: () => number
}

/**
 * What the issuer exposes on its instance (`app.issuer`) once it is ready: everything here is open and
 * loaded. Before `ready()` the instance has no `issuer` at all, never a half-built one.
 */
export interface IssuerRuntime {
  readonly settings: IssuerSettings
  /** The key set, loaded. */
  readonly keys: KeySet
  /** The store the issuer opened (DATABASE_URL); closed with the instance. */
  readonly store: IssuerStore
  /** The revocation feed this instance serves. */
  readonly feed: IssuerFeed
  /** Outgoing mail (e-mail codes); `whenIdle()` resolves once queued mail is delivered or given up. */
  readonly mail: MailDelivery
  /** Runs one maintenance tick now (reload keys, rotate when due, prune). */
  tick(): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    issuer: IssuerRuntime
  }
}

/**
 * Builds the issuer. Like every service (lib/service.ts), it opens its own store while the instance loads
 * and closes it with the instance, so `await app.ready()` (or `listen()`) reports a store that cannot be
 * opened. Keys are loaded (generated on first start) and the admin account bootstrapped at the same time.
 * @example
 * const app = buildIssuer({ config: loadIssuerConfig() })
 * await app.ready()
 */
export function buildIssuer(options: BuildIssuerOptions): FastifyInstance {
  const { config } = options
  const settings = issuerSettings(config)
  const now = options.now ?? Date.now
  const logger =
    options.logger ?? createLogger({ name: 'issuer', level: config.LOG_LEVEL, pretty: config.LOG_PRETTY })
  const app = Fastify({
    ...serverOptions({ logger, trustProxy: settings.trustProxy, timeouts: listenerTimeouts(config) }),
    pluginTimeout: ISSUER_LOAD_TIMEOUT_MS,
  })
  registerErrorHandling(app)
  registerHttpHygiene(app, { apiAnswers: true })
  // JSON only: a text/plain body is what a cross-site form can send without a CORS preflight.
  app.removeContentTypeParser('text/plain')
  app.register(operations, { component: 'issuer' })
  app.register(cookie)

  app.register(async function issuer(instance) {
    const store = await openIssuerStore(settings.databaseUrl)
    instance.addHook('onClose', () => store.close())
    const keySet = new KeySet({ storage: keyStorageFor(settings, store), schedule: settings, now })
    keySet.onChange(({ after }) => {
      app.log.info({ keys: after.keys.map((k) => ({ kid: k.kid, state: k.state })) }, 'key set changed')
    })
    await keySet.load()

    const metrics = createIssuerMetrics(app.metrics, keySet)
    const revocationFeed = new IssuerFeed({ settings, store, log: app.log, now, dataDir: config.DATA_DIR })
    watchIssuerFeed(app.metrics, revocationFeed)
    // Every revocation goes in here: recorded in the store, then delivered by the fan-out to the feed's
    // streams and to this process's own verifier (below) before the call returns.
    const revocations = new Revocations({
      store,
      keepMs: settings.accessTokenTtlMs + CLOCK_SKEW_MS,
      now,
      fanout: revocationFeed.fanout,
    })
    // Throttles count in Redis when issuers share one (REDIS_URL), else in the store.
    const counters =
      config.REDIS_URL === undefined
        ? store.throttleCounters
        : new RedisThrottleCounters({
            redis: await connectRedis(instance, config.REDIS_URL, {
              unreachable: 'throttles count in the store until it answers',
              reachable: 'throttles count in Redis again',
            }),
            keyPrefix: config.REDIS_KEY_PREFIX,
            fallback: store.throttleCounters,
            log: app.log,
          })
    const throttle = new LoginThrottle({ ...settings.loginThrottle, counters, now })
    const registrations = new RegistrationThrottle({ ...settings.registrationLimit, counters, now })
    const hashing = new PasswordHashing()
    const accounts = new Accounts({ store, throttle, registrations, hashing, revocations, metrics, now })
    const sessions = new Sessions({
      store,
      revocations,
      metrics,
      now,
      idleTtlMs: settings.sessionIdleTtlMs,
      absoluteTtlMs: settings.sessionAbsoluteTtlMs,
      reuseGraceMs: settings.refreshReuseGraceMs,
    })
    const tokens = new AccessTokenMinter({
      keys: keySet,
      issuer: settings.issuer,
      audience: settings.audience,
      ttlMs: settings.accessTokenTtlMs,
      now,
    })
    // Mail never holds up an answer; closing waits only for attempts under way (retries are dropped).
    const mail = new MailDelivery({ settings, log: app.log, deliveries: metrics.mailDeliveries })
    instance.addHook('onClose', () => mail.close())
    const emailCodes = new EmailCodes({
      settings,
      registrationOpen: settings.registrationOpen,
      store,
      accounts,
      throttle,
      counters,
      mail,
      metrics,
      now,
    })
    if (settings.loginMethods.has('email-code')) {
      app.log.info({ mail: mail.destination }, 'e-mail code login is on')
    }
    const external = new ExternalLogin({
      issuers: settings.loginMethods.has('external') ? settings.externalIssuers : [],
      store,
      accounts,
      registrationOpen: settings.registrationOpen,
      metrics,
      log: app.log,
      now,
    })
    const keyAdmin = new KeyAdministration({ keys: keySet, revocations })
    await accounts.bootstrapAdmin(config.KEYGATE_ADMIN_EMAIL, config.KEYGATE_ADMIN_PASSWORD, app.log)

    // The issuer's own Bearer routes verify with the shared plugin against the keys it holds in process.
    await instance.register(auth, {
      issuers: [
        {
          issuer: settings.issuer,
          audiences: [settings.audience],
          keySource: keySet.keySource(),
          own: true,
        },
      ],
      defaultAuth: { mode: 'none' },
      now,
    })
    // This process's verifier follows the fan-out like any subscriber: each event (made here, by another
    // instance or by the command line) is applied to it once.
    const ownRevocations = instance.auth.revocations.get(settings.issuer)!
    revocationFeed.fanout.subscribe((recorded) => ownRevocations.apply(recorded))

    // OAuth: registered clients, their grants, introspection and revocation (oauth/).
    const clients = new Clients({ store: store.clients, revocations, now })
    const issuedTokens = new IssuedTokens({
      issuer: settings.issuer,
      keySource: keySet.keySource(),
      revocations: ownRevocations,
      now,
    })
    const clientAuthentication = new ClientAuthentication({
      store: store.clients,
      throttle,
      issuer: settings.issuer,
      tokenEndpoint: `${settings.issuer}${TOKEN_PATH}`,
      now,
    })
    // Services behind the gateway exchange the assertion addressed to them, never the caller's raw token.
    const gatewayAssertions = new GatewayAssertions({
      gateway: config.GATEWAY_URL!,
      issuer: settings.issuer,
      revocations: ownRevocations,
      now,
    })
    const grants = new Grants({
      minter: tokens,
      issuedTokens,
      assertions: gatewayAssertions,
      tokenExchangeTtlMs: settings.tokenExchangeTtlMs,
      now,
    })
    const tokenStatus = new TokenStatus({
      issuedTokens,
      revocations,
      introspectionClients: settings.introspectionClients,
    })

    const scheduler = new MaintenanceScheduler({
      keys: keySet,
      store,
      now,
      log: app.log,
      revokedSessionKeepMs: settings.accessTokenTtlMs + CLOCK_SKEW_MS,
    })
    instance.addHook('onReady', async () => {
      await revocationFeed.start()
      scheduler.start()
      external.start()
    })
    // Before the server closes: open streams would otherwise hold it open until their subscribers leave.
    instance.addHook('preClose', async () => revocationFeed.closeStreams())
    instance.addHook('onClose', async () => {
      await scheduler.stop()
      await revocationFeed.stop()
      await external.close()
      await gatewayAssertions.close()
    })
    app.readiness.add('signing-keys', () => (keySet.loaded ? true : 'signing keys are not loaded'))
    app.readiness.add('store', async () => ((await store.ping()) ? true : 'the database does not answer'))
    // On the root instance (still loading, so it may be decorated), once everything it names is open.
    app.decorate('issuer', {
      settings,
      keys: keySet,
      store,
      feed: revocationFeed,
      mail,
      tick: () => scheduler.tick(),
    } satisfies IssuerRuntime)

    await instance.register(wellKnownRoutes, { keys: keySet, settings })
    await instance.register(authRoutes, { settings, accounts, sessions, tokens, metrics, now })
    await instance.register(loginMethodRoutes, { settings })
    await instance.register(emailCodeRoutes, { settings, emailCodes, sessions, tokens, metrics, now })
    await instance.register(externalRoutes, { settings, external, sessions, store, tokens, metrics, now })
    await instance.register(adminRoutes, { accounts, sessions, keyAdmin })
    await instance.register(adminClientRoutes, { clients })
    await instance.register(oauthRoutes, {
      issuer: settings.issuer,
      authentication: clientAuthentication,
      grants,
      tokenStatus,
      rateLimit: settings.oauthRateLimit,
    })
    await instance.register(feedRoutes, {
      store,
      secrets: revocationFeed.secrets,
      streams: revocationFeed.streams,
    })
  })
  return app
}
