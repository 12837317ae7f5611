/**
 * `buildIssuer(opts)`: the issuer as a Fastify instance that never listens (server.ts listens). It signs
 * access tokens with a scheduled key set, publishes the JWKS, and runs accounts, sessions and the admin API.
 */
import cookie from '@fastify/cookie'
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { auth } from '../../lib/auth/index.js'
import type { RevocationEvent as VerifierRevocationEvent } from '../../lib/auth/index.js'
import { registerErrorHandling } from '../../lib/errors.js'
import { operations } from '../../lib/operations.js'
import { createLogger, serverOptions } from '../../lib/server.js'
import { AccessTokenMinter } from './access-tokens.js'
import { Accounts } from './accounts.js'
import { CLOCK_SKEW_MS, type IssuerConfig, type IssuerSettings, issuerSettings } from './config.js'
import { KeyAdministration } from './key-administration.js'
import { KeySet } from './keys/key-set.js'
import { LoginThrottle } from './login-throttle.js'
import { createIssuerMetrics } from './metrics.js'
import { RevocationEvents } from './revocation-events.js'
import { adminRoutes } from './routes/admin.js'
import { authRoutes } from './routes/auth.js'
import { wellKnownRoutes } from './routes/well-known.js'
import { MaintenanceScheduler } from './scheduler.js'
import { Sessions } from './sessions.js'
import { openIssuerStore } from './store/kysely-store.js'
import type { IssuerStore, RevocationEvent } from './store/types.js'

export interface BuildIssuerOptions {
  config: IssuerConfig
  logger?: FastifyBaseLogger
  /** Current time in milliseconds; default `Date.now`. Tests pass a fake clock. */
  now?: () => number
  /** A store opened by the caller (who then closes it); by default the issuer opens DATABASE_URL itself. */
  store?: IssuerStore
}

/** What the issuer exposes on its instance (`app.issuer`), for its entry point, command line and tests. */
export interface IssuerRuntime {
  readonly settings: IssuerSettings
  readonly keys: KeySet
  /** The store; set once the instance is ready. */
  readonly store: IssuerStore
  /** Runs one maintenance tick now (reload keys, rotate when due, prune). */
  tick(): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    issuer: IssuerRuntime
  }
}

/**
 * Builds the issuer. Keys are loaded (generated on first start), the store opened and the admin account
 * bootstrapped when the instance becomes ready.
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
  const app = Fastify(serverOptions({ logger }))
  registerErrorHandling(app)
  // JSON only: a text/plain body is what a cross-site form can send without a CORS preflight.
  app.removeContentTypeParser('text/plain')
  app.register(operations, { component: 'issuer' })
  app.register(cookie)

  const keys = new KeySet({ dir: settings.keysDir, schedule: settings, now })
  let store: IssuerStore | undefined
  let scheduler: MaintenanceScheduler | undefined
  const runtime: IssuerRuntime = {
    settings,
    keys,
    get store() {
      if (!store) throw new Error('keygate: the issuer store is not open yet')
      return store
    },
    tick: async () => scheduler?.tick(),
  }
  app.decorate('issuer', runtime)
  keys.onChange(({ after }) => {
    app.log.info({ keys: after.keys.map((k) => ({ kid: k.kid, state: k.state })) }, 'key set changed')
  })

  app.register(async function issuer(instance) {
    store = options.store ?? (await openIssuerStore(settings.databaseUrl))
    const openedStore = store
    if (!options.store) instance.addHook('onClose', () => openedStore.close())
    await keys.load()

    const metrics = createIssuerMetrics(app.metrics, keys)
    const events = new RevocationEvents(settings.accessTokenTtlMs + CLOCK_SKEW_MS)
    const throttle = new LoginThrottle({
      maxFailuresPerAccount: settings.loginMaxFailuresPerAccount,
      maxFailuresPerAddress: settings.loginMaxFailuresPerAddress,
      windowMs: settings.loginThrottleWindowMs,
    })
    const accounts = new Accounts({ store, throttle, events, metrics, now })
    const sessions = new Sessions({
      store,
      events,
      metrics,
      now,
      idleTtlMs: settings.sessionIdleTtlMs,
      absoluteTtlMs: settings.sessionAbsoluteTtlMs,
      reuseGraceMs: settings.refreshReuseGraceMs,
    })
    const tokens = new AccessTokenMinter({
      keys,
      issuer: settings.issuer,
      audience: settings.audience,
      ttlMs: settings.accessTokenTtlMs,
      now,
    })
    const keyAdmin = new KeyAdministration({ keys, store, events })
    await accounts.bootstrapAdmin(config.KEYGATE_ADMIN_EMAIL, config.KEYGATE_ADMIN_PASSWORD, app.log)

    // The issuer's own Bearer routes verify with the shared plugin against the keys it holds in process.
    await instance.register(auth, {
      issuers: [{ issuer: settings.issuer, audiences: [settings.audience], keySource: keys.keySource() }],
      defaultAuth: { mode: 'none' },
      now,
    })
    const ownRevocations = instance.auth.revocations.get(settings.issuer)
    // Revocations made here apply to this process's verifier at once; other verifiers learn them from the feed.
    events.onRecorded((event) => ownRevocations?.apply(toVerifierEvent(event)))

    scheduler = new MaintenanceScheduler({
      keys,
      store,
      now,
      log: app.log,
      revokedSessionKeepMs: settings.accessTokenTtlMs + CLOCK_SKEW_MS,
      onTick: (at) => ownRevocations?.prune(at),
    })
    const running = scheduler
    instance.addHook('onReady', async () => running.start())
    instance.addHook('onClose', async () => running.stop())
    app.readiness.add('signing-keys', () => (keys.loaded ? true : 'signing keys are not loaded'))
    app.readiness.add('store', async () =>
      (await openedStore.ping()) ? true : 'the database does not answer',
    )

    await instance.register(wellKnownRoutes, { keys, settings })
    await instance.register(authRoutes, { settings, accounts, sessions, tokens, metrics, now })
    await instance.register(adminRoutes, { accounts, sessions, keyAdmin })
  })
  return app
}

/** A stored revocation event in the shape the verification plugin's revocation set takes. */
function toVerifierEvent(event: RevocationEvent): VerifierRevocationEvent {
  switch (event.type) {
    case 'session':
      return { type: 'session', sessionId: event.sessionId!, expiresAt: event.expiresAt }
    case 'user':
      return {
        type: 'user',
        subject: event.userId!,
        issuedBefore: event.issuedBefore,
        expiresAt: event.expiresAt,
      }
    case 'token':
      return { type: 'token', tokenId: event.jti!, expiresAt: event.expiresAt }
    case 'key':
      return { type: 'key', kid: event.kid!, expiresAt: event.expiresAt }
  }
}
