/**
 * The verification plugin every keygate component registers: local verification of access tokens (and, in
 * services, of gateway assertions) against cached keys, route requirements, RFC 6750 answers.
 *
 * Routes declare what they need in `config.auth`; routes without it get `defaultAuth`.
 * @example
 * await app.register(auth, { issuers: [{ issuer: 'http://127.0.0.1:4000', audiences: ['keygate-api'] }] })
 * app.get('/me', { config: { auth: { mode: 'required', scopes: ['profile'] } } }, (req) => req.identity)
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { Registry } from 'prom-client'
import type { Dispatcher } from 'undici'
import { KeygateError } from './errors.js'
import { ASSERTION_ALGORITHM, ASSERTION_TYPE, GATEWAY_JWKS_PATH } from './assertion.js'
import { DEFAULT_REALM, withChallenge } from './challenge.js'
import { extractCredentials } from './credentials.js'
import { JwksCache, type JwksCacheOptions } from './jwks-cache.js'
import { AuthMetrics } from './metrics.js'
import { ReachabilityLog } from './reachability-log.js'
import { checkRequirements } from './policy.js'
import { type FeedState, RevocationFeed } from './revocation-feed.js'
import { REVOCATION_PRUNE_INTERVAL_MS, RevocationSet } from './revocation-set.js'
import type { AuthRequirements, Identity, KeySource, TrustedIssuer } from './types.js'
import {
  DEFAULT_ALGORITHMS,
  DEFAULT_CLOCK_TOLERANCE_S,
  DEFAULT_TOKEN_TYPES,
  type IssuerPolicy,
  TokenVerifier,
} from './verifier.js'

/** Timings and limits of every JWKS cache the plugin creates (see jwks-cache.ts for defaults). */
export type JwksSettings = Pick<
  JwksCacheOptions,
  'minTtlMs' | 'maxTtlMs' | 'defaultTtlMs' | 'cooldownMs' | 'maxStaleMs' | 'timeoutMs' | 'maxBytes'
>

/** A gateway whose assertions a service accepts in place of (or beside) the caller's access token. */
export interface TrustedGateway {
  /** The gateway's URL: the assertion's `iss`. */
  issuer: string
  /** Default `${issuer}${GATEWAY_JWKS_PATH}`. */
  jwksUri?: string
  keySource?: KeySource
  /** This service's name: the assertion's `aud`. */
  audience: string
  clockToleranceS?: number
}

export interface AuthPluginOptions {
  issuers: TrustedIssuer[]
  /** Accept gateway assertions (services); absent at the gateway itself, which must never accept one. */
  gateway?: TrustedGateway
  /** Requirements of routes without `config.auth`. Default `{ mode: 'required' }`. */
  defaultAuth?: AuthRequirements
  realm?: string
  jwks?: JwksSettings
  /** Largest token accepted, in bytes. */
  maxTokenBytes?: number
  /** Verified tokens remembered per verifier. */
  cacheSize?: number
  /** Milliseconds since the epoch. */
  now?: () => number
  /** undici dispatcher for JWKS and feed requests (tests, proxies). */
  dispatcher?: Dispatcher
  /** Subscribe to the revocation feed of every trusted issuer that names one. */
  revocationFeed?: {
    /** The verifiers' shared secret (see feed-protocol.ts). */
    secret: string
    /** Out-of-contact time after which sensitive routes refuse (503). Default 30 s. */
    maxStaleMs?: number
    /** Silence after which the stream is reopened. Default 15 s. */
    silenceMs?: number
  }
}

/**
 * What an application may decorate its instance with, before registering the plugin, for the plugin to
 * report into: its Prometheus registry and its named readiness checks. keygate's components do (their
 * operations plugin); elsewhere the plugin's metrics go to a registry of its own, and `app.auth.ready()` says
 * when the keys are loaded.
 */
export interface OperationsDecorators {
  metrics: Registry
  readiness: {
    add(
      name: string,
      check: () => true | string | Promise<true | string>,
      options?: { required?: boolean },
    ): void
  }
}

/** What the plugin decorates the instance with. */
export interface AuthContext {
  /**
   * Authenticates a request against requirements (the route's, by default): sets and returns
   * `request.identity`, or throws a KeygateError carrying its RFC 6750 challenge.
   */
  authenticate(request: FastifyRequest, requirements?: AuthRequirements): Promise<Identity | null>
  readonly verifier: TokenVerifier
  readonly assertionVerifier: TokenVerifier | undefined
  /**
   * The revocation set of each trusted issuer (its policy's), filled by the issuer's revocation feed — or,
   * inside the issuer itself, by its own fan-out.
   */
  readonly revocations: ReadonlyMap<string, RevocationSet>
  /** The revocation feed of each issuer that has one. */
  readonly feeds: ReadonlyMap<string, RevocationFeed>
  /** Resolves once every key source has loaded its keys. */
  ready(): Promise<void>
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified caller, or null on public routes and anonymous optional ones. */
    identity: Identity | null
  }
  interface FastifyInstance {
    auth: AuthContext
  }
  interface FastifyContextConfig {
    auth?: AuthRequirements
  }
}

const DEFAULT_AUTH: AuthRequirements = { mode: 'required' }

/** `typ` values of the generic JWT profile (an absent `typ` is accepted too). */
const GENERIC_JWT_TYPES = ['jwt', 'at+jwt']

/** The policy of a trusted issuer or gateway (without a revocation set: the caller adds one where it applies). */
function policyFor(
  trusted: TrustedIssuer,
  defaults: { algorithms: string[]; types: string[] },
  makeSource: (issuer: string, jwksUri: string | undefined, algorithms: string[]) => KeySource,
): IssuerPolicy {
  const algorithms = trusted.algorithms ?? defaults.algorithms
  return {
    issuer: trusted.issuer,
    ...(trusted.own === undefined ? {} : { own: trusted.own }),
    ...(trusted.grants === undefined ? {} : { grants: trusted.grants }),
    ...(trusted.profile === undefined ? {} : { profile: trusted.profile }),
    ...(trusted.claims === undefined ? {} : { claims: trusted.claims }),
    audiences: trusted.audiences,
    algorithms,
    types: (trusted.types ?? (trusted.profile === 'jwt' ? GENERIC_JWT_TYPES : defaults.types)).map((t) =>
      t.toLowerCase(),
    ),
    clockToleranceS: trusted.clockToleranceS ?? DEFAULT_CLOCK_TOLERANCE_S,
    keySource: trusted.keySource ?? makeSource(trusted.issuer, trusted.jwksUri, algorithms),
  }
}

async function authPlugin(app: FastifyInstance, options: AuthPluginOptions): Promise<void> {
  if (!options.issuers?.length) throw new Error('keygate auth: at least one trusted issuer is required')
  const realm = options.realm ?? DEFAULT_REALM
  const defaultAuth = options.defaultAuth ?? DEFAULT_AUTH
  const now = options.now ?? Date.now
  const { metrics: registry = new Registry(), readiness } = app as FastifyInstance &
    Partial<OperationsDecorators>
  const metrics = new AuthMetrics(registry)
  const caches: JwksCache[] = []
  const makeSource = (issuer: string, jwksUri: string | undefined, algorithms: string[]): KeySource => {
    const reachability = new ReachabilityLog(app.log, `the JWKS of ${issuer}`, { issuer })
    const cache = new JwksCache({
      ...options.jwks,
      issuer,
      ...(jwksUri ? { jwksUri } : {}),
      algorithms,
      now,
      ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
      onFetch: (outcome, error) => {
        metrics.jwksFetches.labels(issuer, outcome).inc()
        if (error) reachability.failed(error.message, 'JWKS fetch failed')
        else reachability.reached()
      },
      onUnknownKid: () => metrics.unknownKid.labels(issuer).inc(),
      onKeySkipped: (kid, reason) =>
        app.log.warn({ issuer, kid: String(kid).slice(0, 64), reason }, 'JWK skipped'),
    })
    metrics.watchKeySource(issuer, cache)
    caches.push(cache)
    return cache
  }

  // Each trusted issuer's policy owns the revocations of its tokens.
  const trustedIssuers = options.issuers.map((trusted) => ({
    trusted,
    policy: {
      ...policyFor(trusted, { algorithms: DEFAULT_ALGORITHMS, types: DEFAULT_TOKEN_TYPES }, makeSource),
      revocations: new RevocationSet(trusted.issuer),
    },
  }))
  const issuerPolicies = trustedIssuers.map((t) => t.policy)
  const revocationSets = issuerPolicies.map((p) => p.revocations)
  const common = {
    now,
    metrics,
    ...(options.maxTokenBytes ? { maxTokenBytes: options.maxTokenBytes } : {}),
    ...(options.cacheSize ? { cacheSize: options.cacheSize } : {}),
  }
  const verifier = new TokenVerifier({ ...common, issuers: issuerPolicies, profile: 'access_token' })

  let assertionVerifier: TokenVerifier | undefined
  let gatewayPolicy: IssuerPolicy | undefined
  if (options.gateway) {
    const g = options.gateway
    gatewayPolicy = policyFor(
      {
        issuer: g.issuer,
        jwksUri: g.jwksUri ?? `${g.issuer}${GATEWAY_JWKS_PATH}`,
        ...(g.keySource ? { keySource: g.keySource } : {}),
        audiences: [g.audience],
        algorithms: [ASSERTION_ALGORITHM],
        types: [ASSERTION_TYPE],
        ...(g.clockToleranceS === undefined ? {} : { clockToleranceS: g.clockToleranceS }),
      },
      { algorithms: [ASSERTION_ALGORITHM], types: [ASSERTION_TYPE] },
      makeSource,
    )
    // An assertion is revoked with the access token it vouches for: the trusted issuers' sets apply.
    assertionVerifier = new TokenVerifier({
      ...common,
      issuers: [gatewayPolicy],
      profile: 'assertion',
      revocations: revocationSets,
      subjectIssuers: issuerPolicies,
    })
  }

  // Readiness waits for the required issuers (keygate's own by default) and the gateway; the others are
  // reported by name, and only their own tokens wait (503) while their keys are unavailable.
  const anyOwn = options.issuers.some((t) => t.own === true)
  const isRequired = (t: TrustedIssuer) => t.required ?? (anyOwn ? t.own === true : true)
  const named = [
    ...trustedIssuers.map(({ trusted, policy }) => ({
      issuer: trusted.issuer,
      source: policy.keySource,
      required: isRequired(trusted),
    })),
    ...(gatewayPolicy
      ? [{ issuer: gatewayPolicy.issuer, source: gatewayPolicy.keySource, required: true }]
      : []),
  ]
  const requiredSources = named.filter((n) => n.required)
  for (const { issuer, source, required } of named) metrics.watchIssuer(issuer, source, required)
  for (const cache of caches) cache.start()

  const feeds = new Map<string, RevocationFeed>()
  if (options.revocationFeed) {
    const { secret, maxStaleMs, silenceMs } = options.revocationFeed
    for (const { trusted, policy } of trustedIssuers) {
      if (!trusted.revocationFeed) continue
      const issuer = trusted.issuer
      const reachability = new ReachabilityLog(app.log, `the revocation feed of ${issuer}`, { issuer })
      const feed = new RevocationFeed({
        issuer,
        url: trusted.revocationFeed,
        secret,
        set: policy.revocations,
        now,
        ...(maxStaleMs === undefined ? {} : { maxStaleMs }),
        ...(silenceMs === undefined ? {} : { silenceMs }),
        ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
        onApplied: (events) => {
          for (const e of events) metrics.feedEvents.labels(issuer, e.type).inc()
        },
        onStateChange: (state: FeedState, reason?: string) => {
          if (state === 'down') reachability.failed(reason, 'revocation feed down')
          else if (state === 'live') reachability.reached()
          app.log.debug({ issuer, state, reason }, 'revocation feed state')
        },
      })
      metrics.watchFeed(issuer, feed)
      feeds.set(issuer, feed)
      feed.start()
    }
  }

  async function verifyCredentials(
    request: FastifyRequest,
    mode: AuthRequirements['mode'],
  ): Promise<Identity | null> {
    const { token, assertion } = extractCredentials(request)
    const fromAssertion =
      assertion !== undefined && assertionVerifier ? await assertionVerifier.verify(assertion) : undefined
    if (token === undefined && fromAssertion === undefined) {
      if (mode === 'optional') return null
      throw new KeygateError('KG_TOKEN_MISSING')
    }
    const identity = token === undefined ? fromAssertion! : await verifier.verify(token)
    // Both present (the gateway relays the token beside its assertion): they must speak of the same token.
    if (fromAssertion && token !== undefined) {
      if (fromAssertion.subject !== identity.subject || fromAssertion.tokenId !== identity.tokenId) {
        throw new KeygateError('KG_ASSERTION_INVALID', {
          message: 'The forwarded identity assertion does not match the access token',
        })
      }
    }
    return identity
  }

  // Revocations are forgotten once their tokens have expired, here and nowhere else.
  const pruner = setInterval(() => {
    const at = now()
    for (const set of revocationSets) set.prune(at)
  }, REVOCATION_PRUNE_INTERVAL_MS)
  pruner.unref()

  const context: AuthContext = {
    verifier,
    assertionVerifier,
    revocations: new Map(revocationSets.map((set) => [set.issuer, set])),
    feeds,
    async authenticate(request, requirements = request.routeOptions.config.auth ?? defaultAuth) {
      if (requirements.mode === 'none') return null
      let identity: Identity | null = null
      try {
        identity = await verifyCredentials(request, requirements.mode)
        if (identity) {
          // A sensitive route cannot vouch that the token was not revoked while the feed is out of contact.
          if (requirements.sensitive && feeds.get(identity.issuer)?.isStale()) {
            throw new KeygateError('KG_REVOCATION_FEED_STALE', { headers: { 'retry-after': '5' } })
          }
          checkRequirements(identity, requirements)
        }
      } catch (err) {
        if (!(err instanceof KeygateError)) throw err
        request.log.info(
          { code: err.code, status: err.statusCode, sub: identity?.subject, claim: err.details?.claim },
          'authentication refused',
        )
        throw withChallenge(err, realm)
      }
      request.identity = identity
      return identity
    },
    async ready() {
      await Promise.all(requiredSources.map((n) => n.source.ready()))
    },
  }

  app.decorateRequest('identity', null)
  app.decorate('auth', context)
  // Refused keys never make a component unready (the usable ones serve), but they are named, with why.
  readiness?.add(
    'refused-keys',
    () => {
      const refused = caches.flatMap((c) => c.refusedKeys().map((k) => `${c.issuer}: ${k.kid} (${k.reason})`))
      return refused.length === 0 ? true : refused.join('; ')
    },
    { required: false },
  )
  readiness?.add('keys', () => {
    const missing = requiredSources.filter((n) => !n.source.usable()).map((n) => n.issuer)
    return missing.length === 0 ? true : `signing keys not loaded: ${missing.join(', ')}`
  })
  for (const { issuer, source, required } of named) {
    if (required) continue
    readiness?.add(
      `issuer ${issuer}`,
      () => (source.usable() ? true : 'signing keys not loaded; its tokens are answered 503'),
      { required: false },
    )
  }
  const requiredFeeds = trustedIssuers.flatMap(({ trusted }) => {
    const feed = feeds.get(trusted.issuer)
    return feed && isRequired(trusted) ? [[trusted.issuer, feed] as const] : []
  })
  if (requiredFeeds.length > 0) {
    readiness?.add('revocation-feed', () => {
      const behind = requiredFeeds.filter(([, f]) => !f.isSynced()).map(([issuer]) => issuer)
      return behind.length === 0 ? true : `revocation feed not yet synced: ${behind.join(', ')}`
    })
  }
  for (const [issuer, feed] of feeds) {
    if (requiredFeeds.some(([i]) => i === issuer)) continue
    readiness?.add(`revocation-feed ${issuer}`, () => (feed.isSynced() ? true : 'not yet synced'), {
      required: false,
    })
  }
  // Callback style: a route that needs nothing (the gateway's proxied route authenticates in its handler)
  // goes on synchronously, without a promise per request.
  app.addHook('onRequest', (request, _reply, done) => {
    if (request.is404) return done()
    const requirements = request.routeOptions.config.auth ?? defaultAuth
    if (requirements.mode === 'none') return done()
    context.authenticate(request, requirements).then(() => done(), done)
  })
  // Only the caches made here are ours to close; a key source passed in belongs to its owner.
  app.addHook('onClose', async () => {
    clearInterval(pruner)
    await Promise.all([...caches.map((c) => c.close()), ...[...feeds.values()].map((f) => f.close())])
  })
}

/** The shared verification plugin (see the file comment). */
export const auth = fp(authPlugin, { name: 'keygate-auth', fastify: '5.x' })
