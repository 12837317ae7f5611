/**
 * The issuer's configuration: one schema (property names are the environment variables), loaded and checked
 * once at start (durations become milliseconds there). `issuerSettings()` turns it into the settings the code
 * runs on (derived lifetimes, origins, key storage) and enforces the rules that tie settings together.
 */
import { join } from 'node:path'
import { Type } from '@sinclair/typebox'
import { DEFAULT_FEED_HEARTBEAT_MS, DEFAULT_FEED_SILENCE_MS } from '@keygate/fastify-auth'
import {
  commaList,
  componentSchema,
  type Config,
  DatabaseUrl,
  Duration,
  loadConfig,
  OneOf,
  RateLimitSetting,
  RedisSettings,
} from '../../lib/config.js'
import { isPostgresUrl } from '../../lib/db.js'
import { DEFAULT_API_AUDIENCE } from '../../lib/identity/constants.js'
import { trustedProxies } from '../../lib/server.js'
import { parseKeyEncryptionKey } from './keys/key-sealing.js'
import type { KeyStorageSettings } from './keys/key-storage.js'
import type { KeySchedule } from './keys/lifecycle.js'
import {
  DEFAULT_EMAIL_CODE_MAX_ATTEMPTS,
  DEFAULT_EMAIL_CODE_RATE_LIMIT_PER_ADDRESS,
  DEFAULT_EMAIL_CODE_RATE_LIMIT_PER_EMAIL,
  DEFAULT_EMAIL_CODE_TTL,
  type EmailCodeSettings,
} from './email-code-settings.js'
import { type ExternalIssuer, parseExternalIssuers } from './external-issuers.js'
import { DEFAULT_LOGIN_METHODS, type LoginMethod, parseLoginMethods } from './login-methods.js'
import type { LoginThrottleSettings } from './login-throttle.js'
import type { MailSettings } from './mail/mail-delivery.js'

/** `client_id` of the tokens minted by password login (the browser client). */
export const DEFAULT_CLIENT_ID = 'keygate-web'
export const DEFAULT_ACCESS_TOKEN_TTL = '15m'
/** How long verifiers may cache the JWKS (`Cache-Control: max-age`). */
export const DEFAULT_JWKS_MAX_AGE = '5m'
/** How long the next key is published before it may sign; at least one JWKS cache lifetime. */
export const DEFAULT_KEY_PUBLISH_LEAD = '1h'
export const DEFAULT_KEY_ROTATION_INTERVAL = '3d'
export const DEFAULT_KEY_RSA_BITS = 2048
export const DEFAULT_KEYS_DIR = 'keys'
export const DEFAULT_SESSION_IDLE_TTL = '7d'
export const DEFAULT_SESSION_ABSOLUTE_TTL = '30d'
/** How long a rotated refresh token still earns a sibling token (two tabs refreshing at once). */
export const DEFAULT_REFRESH_REUSE_GRACE = '10s'
/** Failed logins of one account from one address before that address waits (back-off) for that account. */
export const DEFAULT_LOGIN_MAX_FAILURES_PER_ACCOUNT_AND_ADDRESS = 5
/** Failed logins from one address, whatever the accounts, before that address waits (back-off). */
export const DEFAULT_LOGIN_MAX_FAILURES_PER_ADDRESS = 50
/** Failed logins of one account, from any addresses, before its logins are slowed down (never refused). */
export const DEFAULT_LOGIN_MAX_FAILURES_PER_ACCOUNT = 10
/** The first back-off once a limit is reached; each further failure doubles it, up to the window. */
export const DEFAULT_LOGIN_BACKOFF = '1m'
/** How long a counter remembers failures after the last one, and the longest back-off. */
export const DEFAULT_LOGIN_THROTTLE_WINDOW = '15m'
/** The longest slow-down of a login for an account under attack from many addresses. */
export const DEFAULT_LOGIN_SLOWDOWN_MAX = '5s'
/** Registrations per client address: `<max>/<window>`. */
export const DEFAULT_REGISTRATION_RATE_LIMIT = '20/1m'
/** Longest lifetime of a token obtained by token exchange (RFC 8693); never past the subject token's. */
export const DEFAULT_TOKEN_EXCHANGE_TTL = '5m'
/** Requests per client address to each OAuth endpoint (token, revocation, introspection), per instance. */
// Per client address: services exchange or introspect every user's token from one address (orders → profile
// exchanges once per access token), so the limit is a flood guard sized for that, not a per-user allowance;
// failed client authentications are throttled separately, like logins.
export const DEFAULT_OAUTH_RATE_LIMIT = '20000/1m'

/** Clock skew allowed between the issuer and verifiers, in milliseconds. */
export const CLOCK_SKEW_MS = 60_000
/** Interval between heartbeats on each revocation stream (the protocol's default, 5 s). */
export const DEFAULT_FEED_HEARTBEAT = `${DEFAULT_FEED_HEARTBEAT_MS}ms`
/**
 * How often each instance reads the event table without being told to: the safety net under the
 * in-process and LISTEN/NOTIFY wake-ups, and what carries a revocation recorded by the command line on
 * SQLite. One indexed query per interval.
 */
export const DEFAULT_FEED_POLL_INTERVAL = '1s'
/** Revocation streams one instance serves at once; the next is refused with 503. */
export const DEFAULT_FEED_MAX_STREAMS = 1000
/** Shortest secret a verifier may present on the feed, in characters. */
export const MIN_FEED_SECRET_LENGTH = 16

/** The From header of mail the issuer sends, unless MAIL_FROM says otherwise. */
export const DEFAULT_MAIL_FROM = 'keygate <no-reply@localhost>'
/** Further delivery attempts after a failed one. */
export const DEFAULT_MAIL_RETRIES = 3
/** Wait before the first retry of a mail; doubles with each further one. */
export const DEFAULT_MAIL_RETRY_DELAY = '5s'
/** One SMTP attempt's connection, greeting and inactivity timeout. */
export const DEFAULT_MAIL_TIMEOUT = '30s'

/** Lifetimes and windows shorter than a second are mistakes (a unit left off), not settings. */
const AT_LEAST_1S = { min: '1s' }

/** Every issuer setting; durations are written `15m` and loaded as milliseconds. */
export const IssuerConfigSchema = componentSchema({
  API_AUDIENCE: Type.String({ default: DEFAULT_API_AUDIENCE, minLength: 1 }),
  ISSUER_CLIENT_ID: Type.String({ default: DEFAULT_CLIENT_ID, minLength: 1 }),
  ACCESS_TOKEN_TTL: Duration(DEFAULT_ACCESS_TOKEN_TTL, AT_LEAST_1S),
  JWKS_MAX_AGE: Duration(DEFAULT_JWKS_MAX_AGE),
  KEY_PUBLISH_LEAD: Duration(DEFAULT_KEY_PUBLISH_LEAD),
  KEY_ROTATION_INTERVAL: Duration(DEFAULT_KEY_ROTATION_INTERVAL, AT_LEAST_1S),
  KEY_RSA_BITS: Type.Unsafe<2048 | 3072 | 4096>({
    type: 'integer',
    enum: [2048, 3072, 4096],
    default: DEFAULT_KEY_RSA_BITS,
  }),
  KEYS_DIR: Type.String({ default: DEFAULT_KEYS_DIR, minLength: 1 }),
  /** A SQLite file path, or `postgres://…`. Default: `${DATA_DIR}/issuer.db`. */
  DATABASE_URL: DatabaseUrl(),
  SESSION_IDLE_TTL: Duration(DEFAULT_SESSION_IDLE_TTL, AT_LEAST_1S),
  SESSION_ABSOLUTE_TTL: Duration(DEFAULT_SESSION_ABSOLUTE_TTL, AT_LEAST_1S),
  REFRESH_REUSE_GRACE: Duration(DEFAULT_REFRESH_REUSE_GRACE),
  REGISTRATION: OneOf(['open', 'closed'], 'open'),
  /** Comma list, any non-empty subset of `password`, `email-code`, `external` (login-methods.ts). */
  LOGIN_METHODS: Type.String({ default: DEFAULT_LOGIN_METHODS }),
  /**
   * JSON array of external issuers whose tokens log in (`external`): `{ issuer, jwks_uri, audience,
   * algorithms?, trusted_for_email? }` (a JSON string in the environment, an array in a config file).
   */
  EXTERNAL_ISSUERS: Type.Optional(Type.Unsafe<string | unknown[]>({ type: ['string', 'array'] })),
  EMAIL_CODE_TTL: Duration(DEFAULT_EMAIL_CODE_TTL, { min: '1m', max: '1h' }),
  EMAIL_CODE_MAX_ATTEMPTS: Type.Integer({
    minimum: 1,
    maximum: 10,
    default: DEFAULT_EMAIL_CODE_MAX_ATTEMPTS,
  }),
  /** Code requests per client address, `<max>/<window>`. */
  EMAIL_CODE_RATE_LIMIT_PER_ADDRESS: RateLimitSetting(DEFAULT_EMAIL_CODE_RATE_LIMIT_PER_ADDRESS, '1s'),
  /** Code requests per e-mail, `<max>/<window>`. */
  EMAIL_CODE_RATE_LIMIT_PER_EMAIL: RateLimitSetting(DEFAULT_EMAIL_CODE_RATE_LIMIT_PER_EMAIL, '1s'),
  /** `smtp://user:pass@host:587` (STARTTLS when offered) or `smtps://…`; unset: `${DATA_DIR}/outbox`. */
  SMTP_URL: Type.Optional(Type.String({ pattern: '^smtps?://' })),
  MAIL_FROM: Type.String({ default: DEFAULT_MAIL_FROM, minLength: 3 }),
  MAIL_RETRIES: Type.Integer({ minimum: 0, maximum: 10, default: DEFAULT_MAIL_RETRIES }),
  MAIL_RETRY_DELAY: Duration(DEFAULT_MAIL_RETRY_DELAY, { min: '10ms' }),
  MAIL_TIMEOUT: Duration(DEFAULT_MAIL_TIMEOUT, { min: '100ms' }),
  KEYGATE_ADMIN_EMAIL: Type.Optional(Type.String({ minLength: 1 })),
  KEYGATE_ADMIN_PASSWORD: Type.Optional(Type.String({ minLength: 1 })),
  /** Comma-separated origins allowed to call refresh/logout besides the issuer's own. Default: PUBLIC_URL's. */
  ALLOWED_ORIGINS: Type.Optional(Type.String()),
  LOGIN_MAX_FAILURES_PER_ACCOUNT_AND_ADDRESS: Type.Integer({
    minimum: 1,
    default: DEFAULT_LOGIN_MAX_FAILURES_PER_ACCOUNT_AND_ADDRESS,
  }),
  LOGIN_MAX_FAILURES_PER_ADDRESS: Type.Integer({
    minimum: 1,
    default: DEFAULT_LOGIN_MAX_FAILURES_PER_ADDRESS,
  }),
  LOGIN_MAX_FAILURES_PER_ACCOUNT: Type.Integer({
    minimum: 1,
    default: DEFAULT_LOGIN_MAX_FAILURES_PER_ACCOUNT,
  }),
  LOGIN_BACKOFF: Duration(DEFAULT_LOGIN_BACKOFF, AT_LEAST_1S),
  LOGIN_THROTTLE_WINDOW: Duration(DEFAULT_LOGIN_THROTTLE_WINDOW, AT_LEAST_1S),
  LOGIN_SLOWDOWN_MAX: Duration(DEFAULT_LOGIN_SLOWDOWN_MAX),
  /** Registrations per client address, `<max>/<window>` (e.g. `20/1m`). */
  REGISTRATION_RATE_LIMIT: RateLimitSetting(DEFAULT_REGISTRATION_RATE_LIMIT, '1s'),
  /**
   * Addresses and CIDR ranges (comma list) of the proxies in front — the gateway — whose X-Forwarded-For
   * is believed: the throttles then count the client's address, not the gateway's. Default: none
   * (`keygate start` sets the local gateway's loopback address when it runs both).
   */
  ISSUER_TRUST_PROXY: Type.String({ default: '' }),
  /**
   * Secrets verifiers may present on the revocation feed, comma-separated (old and new while rotating).
   * Default: the one generated in `${DATA_DIR}/revocation-feed.secret`, as verifiers on this machine use.
   */
  REVOCATION_FEED_SECRET: Type.Optional(Type.String({ minLength: MIN_FEED_SECRET_LENGTH })),
  FEED_HEARTBEAT: Duration(DEFAULT_FEED_HEARTBEAT),
  FEED_POLL_INTERVAL: Duration(DEFAULT_FEED_POLL_INTERVAL, { min: '100ms' }),
  FEED_MAX_STREAMS: Type.Integer({ minimum: 1, default: DEFAULT_FEED_MAX_STREAMS }),
  /** Longest lifetime of an exchanged token; at most ACCESS_TOKEN_TTL. */
  TOKEN_EXCHANGE_TTL: Duration(DEFAULT_TOKEN_EXCHANGE_TTL, AT_LEAST_1S),
  /** Registered clients (comma-separated `client_id`s) that may call the introspection endpoint. */
  OAUTH_INTROSPECTION_CLIENTS: Type.String({ default: '' }),
  /** Requests per client address to each OAuth endpoint, `<max>/<window>` (e.g. `20000/1m`). */
  OAUTH_RATE_LIMIT: RateLimitSetting(DEFAULT_OAUTH_RATE_LIMIT, '1s'),
  /**
   * Redis shared by several issuers: the login, registration, e-mail code and client authentication
   * throttles count there instead of in the store (redis-throttle-counters.ts).
   */
  ...RedisSettings,
  /** 32 bytes (base64 or hex) sealing the private keys stored in PostgreSQL; required with PostgreSQL. */
  KEY_ENCRYPTION_KEY: Type.Optional(Type.String({ minLength: 1 })),
})

export type IssuerConfig = Config<typeof IssuerConfigSchema>

/** Reads and validates the issuer's configuration (environment, optional `KEYGATE_CONFIG` file). */
export function loadIssuerConfig(env?: Record<string, string | undefined>): IssuerConfig {
  const config = loadConfig(IssuerConfigSchema, env ? { env } : {})
  issuerSettings(config)
  return config
}

/**
 * The configuration in the units the code runs on. The key schedule and the key storage's settings are
 * declared in keys/, which never imports this file.
 */
export interface IssuerSettings extends KeySchedule, KeyStorageSettings, EmailCodeSettings, MailSettings {
  issuer: string
  audience: string
  clientId: string
  accessTokenTtlMs: number
  jwksMaxAgeMs: number
  rsaBits: 2048 | 3072 | 4096
  databaseUrl: string
  sessionIdleTtlMs: number
  sessionAbsoluteTtlMs: number
  refreshReuseGraceMs: number
  registrationOpen: boolean
  /** The login methods that are on (LOGIN_METHODS). */
  loginMethods: ReadonlySet<LoginMethod>
  /** Issuers whose tokens log in (EXTERNAL_ISSUERS), used when `external` is on. */
  externalIssuers: ExternalIssuer[]
  /** Origins allowed for refresh/logout besides the request's own. */
  allowedOrigins: ReadonlySet<string>
  /** Proxies whose X-Forwarded-For is believed (ISSUER_TRUST_PROXY). */
  trustProxy: string[]
  loginThrottle: LoginThrottleSettings
  /** Registrations allowed per client address within `windowMs`. */
  registrationLimit: { max: number; windowMs: number }
  /** Feed secrets from REVOCATION_FEED_SECRET; undefined: use the generated one (see feed-secrets.ts). */
  feedSecrets: string[] | undefined
  feedHeartbeatMs: number
  feedPollIntervalMs: number
  feedMaxStreams: number
  /** Longest lifetime of an exchanged token, in milliseconds. */
  tokenExchangeTtlMs: number
  /** Clients that may introspect (OAUTH_INTROSPECTION_CLIENTS). */
  introspectionClients: ReadonlySet<string>
  /** Requests per client address to each OAuth endpoint within `windowMs`. */
  oauthRateLimit: { max: number; windowMs: number }
}

/** The issuer's store: DATABASE_URL, or `issuer.db` in DATA_DIR. */
export function issuerDatabaseUrl(config: Pick<IssuerConfig, 'DATABASE_URL' | 'DATA_DIR'>): string {
  return config.DATABASE_URL ?? join(config.DATA_DIR, 'issuer.db')
}

/** Settings by the config they come from: derived once, however many parts of a process ask. */
const settingsByConfig = new WeakMap<IssuerConfig, IssuerSettings>()

/**
 * Derives the settings and checks the rules between them, throwing an Error that names the setting. The
 * result is kept with the config, so loading, building and the command line derive them once.
 * @example
 * const settings = issuerSettings(loadIssuerConfig())
 */
export function issuerSettings(config: IssuerConfig): IssuerSettings {
  let settings = settingsByConfig.get(config)
  if (!settings) {
    settings = deriveSettings(config)
    settingsByConfig.set(config, settings)
  }
  return settings
}

function deriveSettings(config: IssuerConfig): IssuerSettings {
  const accessTokenTtlMs = config.ACCESS_TOKEN_TTL
  const jwksMaxAgeMs = config.JWKS_MAX_AGE
  const keyPublishLeadMs = config.KEY_PUBLISH_LEAD
  const keyRotationIntervalMs = config.KEY_ROTATION_INTERVAL
  const sessionIdleTtlMs = config.SESSION_IDLE_TTL
  const sessionAbsoluteTtlMs = config.SESSION_ABSOLUTE_TTL
  const invalid = (message: string) => new Error(`keygate: invalid configuration: ${message}`)
  if (config.LOGIN_BACKOFF > config.LOGIN_THROTTLE_WINDOW) {
    throw invalid('LOGIN_BACKOFF must not exceed LOGIN_THROTTLE_WINDOW, the longest back-off')
  }
  if (keyPublishLeadMs < jwksMaxAgeMs) {
    throw invalid(
      'KEY_PUBLISH_LEAD must be at least JWKS_MAX_AGE, so every verifier sees a key before it signs',
    )
  }
  if (keyRotationIntervalMs < keyPublishLeadMs) {
    throw invalid('KEY_ROTATION_INTERVAL must be at least KEY_PUBLISH_LEAD')
  }
  if (sessionIdleTtlMs > sessionAbsoluteTtlMs) {
    throw invalid('SESSION_IDLE_TTL must not exceed SESSION_ABSOLUTE_TTL')
  }
  if (Boolean(config.KEYGATE_ADMIN_EMAIL) !== Boolean(config.KEYGATE_ADMIN_PASSWORD)) {
    throw invalid('KEYGATE_ADMIN_EMAIL and KEYGATE_ADMIN_PASSWORD must be set together')
  }
  const feedHeartbeatMs = config.FEED_HEARTBEAT
  if (feedHeartbeatMs < 100 || feedHeartbeatMs >= DEFAULT_FEED_SILENCE_MS) {
    throw invalid(
      `FEED_HEARTBEAT must be at least 100ms and under ${DEFAULT_FEED_SILENCE_MS / 1000}s, the silence after which verifiers reconnect`,
    )
  }
  const loginMethods = parseLoginMethods(config.LOGIN_METHODS)
  const externalIssuers = parseExternalIssuers(config.EXTERNAL_ISSUERS)
  if (loginMethods.has('external') && externalIssuers.length === 0) {
    throw invalid('LOGIN_METHODS has external, so EXTERNAL_ISSUERS must name at least one issuer')
  }
  if (externalIssuers.some((external) => external.issuer === config.ISSUER_URL)) {
    throw invalid('EXTERNAL_ISSUERS must not list ISSUER_URL: keygate does not log in with its own tokens')
  }
  const databaseUrl = issuerDatabaseUrl(config)
  // Instances sharing PostgreSQL share the key set there, sealed: a database dump alone must not sign.
  const keyStorage = isPostgresUrl(databaseUrl) ? 'database' : 'file'
  if (keyStorage === 'database' && !config.KEY_ENCRYPTION_KEY) {
    throw invalid(
      'KEY_ENCRYPTION_KEY is required when DATABASE_URL is PostgreSQL: it seals the signing keys stored there (openssl rand -base64 32)',
    )
  }
  return {
    issuer: config.ISSUER_URL,
    audience: config.API_AUDIENCE,
    clientId: config.ISSUER_CLIENT_ID,
    accessTokenTtlMs,
    jwksMaxAgeMs,
    keyPublishLeadMs,
    keyRotationIntervalMs,
    retiredKeyKeepMs: accessTokenTtlMs + jwksMaxAgeMs + CLOCK_SKEW_MS,
    revokedKeyKeepMs: accessTokenTtlMs + CLOCK_SKEW_MS,
    rsaBits: config.KEY_RSA_BITS,
    keysDir: config.KEYS_DIR,
    databaseUrl,
    sessionIdleTtlMs,
    sessionAbsoluteTtlMs,
    refreshReuseGraceMs: config.REFRESH_REUSE_GRACE,
    registrationOpen: config.REGISTRATION === 'open',
    loginMethods,
    externalIssuers,
    emailCodeTtlMs: config.EMAIL_CODE_TTL,
    emailCodeMaxAttempts: config.EMAIL_CODE_MAX_ATTEMPTS,
    emailCodeLimitPerAddress: config.EMAIL_CODE_RATE_LIMIT_PER_ADDRESS,
    emailCodeLimitPerEmail: config.EMAIL_CODE_RATE_LIMIT_PER_EMAIL,
    smtpUrl: config.SMTP_URL,
    mailFrom: config.MAIL_FROM,
    mailRetries: config.MAIL_RETRIES,
    mailRetryDelayMs: config.MAIL_RETRY_DELAY,
    mailTimeoutMs: config.MAIL_TIMEOUT,
    outboxDir: join(config.DATA_DIR, 'outbox'),
    allowedOrigins: allowedOrigins(config),
    trustProxy: trustedProxies(config.ISSUER_TRUST_PROXY, 'ISSUER_TRUST_PROXY'),
    loginThrottle: {
      maxFailuresPerAccountAndAddress: config.LOGIN_MAX_FAILURES_PER_ACCOUNT_AND_ADDRESS,
      maxFailuresPerAddress: config.LOGIN_MAX_FAILURES_PER_ADDRESS,
      maxFailuresPerAccount: config.LOGIN_MAX_FAILURES_PER_ACCOUNT,
      backoffMs: config.LOGIN_BACKOFF,
      windowMs: config.LOGIN_THROTTLE_WINDOW,
      slowdownMaxMs: config.LOGIN_SLOWDOWN_MAX,
    },
    registrationLimit: config.REGISTRATION_RATE_LIMIT,
    feedSecrets: feedSecrets(config.REVOCATION_FEED_SECRET),
    feedHeartbeatMs,
    feedPollIntervalMs: config.FEED_POLL_INTERVAL,
    feedMaxStreams: config.FEED_MAX_STREAMS,
    // Revocation events are kept for an access token's lifetime: a longer-lived exchanged token would outlive
    // them. A shorter ACCESS_TOKEN_TTL (tests, strict deployments) lowers the default with it.
    tokenExchangeTtlMs: Math.min(config.TOKEN_EXCHANGE_TTL, accessTokenTtlMs),
    introspectionClients: new Set(commaList(config.OAUTH_INTROSPECTION_CLIENTS)),
    oauthRateLimit: config.OAUTH_RATE_LIMIT,
    keyStorage,
    keyEncryptionKey:
      config.KEY_ENCRYPTION_KEY === undefined ? undefined : parseKeyEncryptionKey(config.KEY_ENCRYPTION_KEY),
  }
}

/** The comma-separated list of REVOCATION_FEED_SECRET, each long enough to be a secret. */
function feedSecrets(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined
  const secrets = commaList(value)
  if (secrets.length === 0 || secrets.some((s) => s.length < MIN_FEED_SECRET_LENGTH)) {
    throw new Error(
      `keygate: invalid configuration: REVOCATION_FEED_SECRET must be a comma-separated list of secrets of at least ${MIN_FEED_SECRET_LENGTH} characters`,
    )
  }
  return secrets
}

function allowedOrigins(config: IssuerConfig): Set<string> {
  if (config.ALLOWED_ORIGINS === undefined) return new Set([new URL(config.PUBLIC_URL).origin])
  const origins = new Set<string>()
  for (const entry of commaList(config.ALLOWED_ORIGINS)) {
    let url: URL | undefined
    try {
      url = new URL(entry)
    } catch {
      url = undefined
    }
    if (!url || !/^https?:$/.test(url.protocol) || url.origin !== entry.replace(/\/$/, '')) {
      throw new Error(
        'keygate: invalid configuration: ALLOWED_ORIGINS must be a comma-separated list of origins like https://app.example',
      )
    }
    origins.add(url.origin)
  }
  return origins
}
