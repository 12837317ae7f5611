/**
 * The settings of the verification plugin (@keygate/fastify-auth), shared by the gateway and every service:
 * spread `AuthConfigSchema` into a component schema, then turn the loaded config into plugin options. The
 * plugin itself knows nothing of keygate's configuration; this is where keygate's settings meet it.
 */
import { type Static, type StaticDecode, Type } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { join } from 'node:path'
import {
  type AuthPluginOptions,
  FEED_PATH,
  isSupportedAlgorithm,
  type TrustedIssuer,
} from '@keygate/fastify-auth'
import { commaList, Duration, OneOf } from './config.js'
import { DEFAULT_API_AUDIENCE } from './identity/constants.js'
import { loadOrCreateSecret } from './secrets.js'

export const AuthConfigSchema = {
  /**
   * JSON array of trusted issuers `{ issuer, jwksUri?, audiences, algorithms?, types?, clockToleranceS?,
   * revocationFeed?, grants?, profile?, claims?, required? }` (a JSON string in the environment, an array in a config file). keygate's own
   * issuer (ISSUER_URL, with API_AUDIENCE and its revocation feed) is trusted beside them unless listed
   * itself, or unless TRUST_OWN_ISSUER is `off`.
   */
  TRUSTED_ISSUERS: Type.Optional(Type.Unsafe<string | unknown[]>({ type: ['string', 'array'] })),
  /** Trust keygate's own issuer (ISSUER_URL) whatever TRUSTED_ISSUERS lists; `off` only to front another IdP alone. */
  TRUST_OWN_ISSUER: OneOf(['on', 'off'], 'on'),
  /** The audience keygate access tokens are minted for and verifiers require. */
  API_AUDIENCE: Type.String({ default: DEFAULT_API_AUDIENCE, minLength: 1 }),
  CLOCK_TOLERANCE: Duration('30s'),
  JWKS_MIN_TTL: Duration('30s'),
  JWKS_MAX_TTL: Duration('1h'),
  JWKS_DEFAULT_TTL: Duration('5m'),
  JWKS_COOLDOWN: Duration('30s'),
  JWKS_MAX_STALE: Duration('6h'),
  JWKS_TIMEOUT: Duration('5s'),
  JWKS_MAX_BYTES: Type.Integer({ minimum: 1024, default: 256 * 1024 }),
  TOKEN_CACHE_SIZE: Type.Integer({ minimum: 1, default: 10_000 }),
  MAX_TOKEN_BYTES: Type.Integer({ minimum: 512, maximum: 65_536, default: 8192 }),
  AUTH_REALM: Type.String({ default: 'keygate', minLength: 1 }),
  /** Subscribe to the issuers' revocation feeds (`on`) or not (`off`: revocation waits for expiry). */
  REVOCATION_FEED: OneOf(['on', 'off'], 'on'),
  /** Shared secret of verifiers on the feed; default: generated once in `${DATA_DIR}/revocation-feed.secret`. */
  REVOCATION_FEED_SECRET: Type.Optional(Type.String({ minLength: 16 })),
  /** Out-of-contact time after which routes marked sensitive answer 503. */
  REVOCATION_FEED_MAX_STALE: Duration('30s'),
}

/** Where components sharing a data directory keep the feed secret generated when none is configured. */
export const GENERATED_FEED_SECRET_FILE = 'revocation-feed.secret'

/**
 * The feed secret generated once in `${dataDir}/revocation-feed.secret`: what an issuer accepts and a
 * verifier presents when no secret is configured, so components on one machine agree with no configuration.
 */
export function generatedFeedSecret(dataDir: string): string {
  return loadOrCreateSecret(join(dataDir, GENERATED_FEED_SECRET_FILE))
}

/**
 * The feed secret a verifier presents: the first of REVOCATION_FEED_SECRET (a comma list while rotating,
 * new one first), or the one generated for components sharing this machine's DATA_DIR.
 */
export function feedSecret(config: {
  REVOCATION_FEED_SECRET?: string | undefined
  DATA_DIR: string
}): string {
  const configured = commaList(config.REVOCATION_FEED_SECRET ?? '')[0]
  return configured || generatedFeedSecret(config.DATA_DIR)
}

const Grant = Type.Union([Type.Literal('*'), Type.Array(Type.String({ minLength: 1 }))])

const TrustedIssuerSchema = Type.Object(
  {
    // No `#`: it separates issuer and subject in principal ids (lib/auth/principal.ts).
    issuer: Type.String({ pattern: '^https?://[^#]+$' }),
    jwksUri: Type.Optional(Type.String({ pattern: '^https?://' })),
    audiences: Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }),
    algorithms: Type.Optional(Type.Array(Type.String(), { minItems: 1 })),
    types: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })),
    clockToleranceS: Type.Optional(Type.Number({ minimum: 0, maximum: 300 })),
    revocationFeed: Type.Optional(Type.String({ pattern: '^https?://' })),
    grants: Type.Optional(
      Type.Object(
        { roles: Type.Optional(Grant), scopes: Type.Optional(Grant) },
        { additionalProperties: false },
      ),
    ),
    profile: Type.Optional(Type.Union([Type.Literal('rfc9068'), Type.Literal('jwt')])),
    required: Type.Optional(Type.Boolean()),
    claims: Type.Optional(
      Type.Object(
        {
          roles: Type.Optional(Type.String({ minLength: 1 })),
          scopes: Type.Optional(Type.String({ minLength: 1 })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
)
const TrustedIssuersSchema = Type.Array(TrustedIssuerSchema, { minItems: 1 })

type AuthConfig = StaticDecode<ReturnType<typeof Type.Object<typeof AuthConfigSchema>>> & {
  ISSUER_URL: string
  DATA_DIR: string
}

/**
 * The trusted issuers: TRUSTED_ISSUERS, with keygate's own issuer always among them (unless TRUST_OWN_ISSUER
 * is off) and always with its revocation feed; `serviceAudience` (a service's own) is accepted from keygate's
 * own issuer beside the API audience.
 */
function trustedIssuers(
  config: AuthConfig,
  toleranceS: number,
  serviceAudience: string | undefined,
): TrustedIssuer[] {
  const ownFeed = `${config.ISSUER_URL}${FEED_PATH}`
  const ownAudiences = (listed: readonly string[]) => [
    ...new Set([...listed, ...(serviceAudience === undefined ? [] : [serviceAudience])]),
  ]
  const listed = listedIssuers(config).map((t): TrustedIssuer =>
    t.issuer === config.ISSUER_URL
      ? {
          clockToleranceS: toleranceS,
          revocationFeed: ownFeed,
          ...t,
          audiences: ownAudiences(t.audiences),
          own: true,
        }
      : { clockToleranceS: toleranceS, ...t },
  )
  if (config.TRUST_OWN_ISSUER === 'off' || listed.some((t) => t.own)) return listed
  return [
    {
      issuer: config.ISSUER_URL,
      audiences: ownAudiences([config.API_AUDIENCE]),
      clockToleranceS: toleranceS,
      revocationFeed: ownFeed,
      own: true,
    },
    ...listed,
  ]
}

/** TRUSTED_ISSUERS as configured, validated (empty when unset). */
function listedIssuers(config: AuthConfig): Static<typeof TrustedIssuersSchema> {
  if (config.TRUSTED_ISSUERS === undefined) return []
  let parsed: unknown = config.TRUSTED_ISSUERS
  if (typeof parsed === 'string') {
    try {
      parsed = JSON.parse(parsed)
    } catch {
      throw new Error('keygate: invalid configuration: TRUSTED_ISSUERS is not valid JSON')
    }
  }
  if (!Value.Check(TrustedIssuersSchema, parsed)) {
    const first = Value.Errors(TrustedIssuersSchema, parsed).First()
    throw new Error(
      `keygate: invalid configuration: TRUSTED_ISSUERS${first?.path ?? ''} ${first?.message ?? ''}`,
    )
  }
  for (const [i, t] of parsed.entries()) {
    const bad = t.algorithms?.find((a) => !isSupportedAlgorithm(a))
    if (bad)
      throw new Error(
        `keygate: invalid configuration: TRUSTED_ISSUERS/${i}/algorithms: ${bad} is not supported`,
      )
  }
  return parsed
}

/**
 * Plugin options from a loaded config (everything except what the component decides itself:
 * `defaultAuth`, `gateway`, key sources).
 * @example
 * await app.register(auth, { ...authOptionsFromConfig(config), defaultAuth: { mode: 'none' } })
 */
export function authOptionsFromConfig(
  config: AuthConfig,
  options: { serviceAudience?: string } = {},
): AuthPluginOptions {
  const toleranceS = config.CLOCK_TOLERANCE / 1000
  const issuers = trustedIssuers(config, toleranceS, options.serviceAudience)
  if (issuers.length === 0) {
    throw new Error(
      'keygate: invalid configuration: TRUST_OWN_ISSUER is off and TRUSTED_ISSUERS names no issuer',
    )
  }
  return {
    issuers,
    realm: config.AUTH_REALM,
    maxTokenBytes: config.MAX_TOKEN_BYTES,
    cacheSize: config.TOKEN_CACHE_SIZE,
    ...(config.REVOCATION_FEED === 'on'
      ? {
          revocationFeed: {
            secret: feedSecret(config),
            maxStaleMs: config.REVOCATION_FEED_MAX_STALE,
          },
        }
      : {}),
    jwks: {
      minTtlMs: config.JWKS_MIN_TTL,
      maxTtlMs: config.JWKS_MAX_TTL,
      defaultTtlMs: config.JWKS_DEFAULT_TTL,
      cooldownMs: config.JWKS_COOLDOWN,
      maxStaleMs: config.JWKS_MAX_STALE,
      timeoutMs: config.JWKS_TIMEOUT,
      maxBytes: config.JWKS_MAX_BYTES,
    },
  }
}
