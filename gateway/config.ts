/**
 * The gateway's configuration: one schema whose property names are the environment variables, the settings
 * of the verification plugin included.
 */
import { join } from 'node:path'
import { Type } from '@sinclair/typebox'
import { AuthConfigSchema } from '../lib/auth-config.js'
import {
  componentSchema,
  type Config,
  Duration,
  loadConfig,
  RateLimitSetting,
  RedisSettings,
} from '../lib/config.js'
import { trustedProxies } from '../lib/server.js'

/** Largest request body the gateway forwards, in bytes (10 MiB). */
export const DEFAULT_BODY_LIMIT_BYTES = 10 * 1024 * 1024
/** Request bodies up to this size are read whole before they go upstream, in bytes (64 KiB). */
export const DEFAULT_BODY_BUFFER_BYTES = 64 * 1024
/** Least average rate of a larger, streamed request body, in bytes per second (8 KiB/s). */
export const DEFAULT_BODY_MIN_RATE_BYTES_PER_S = 8 * 1024
/** Requests one client may have in progress at the gateway (per process). */
export const DEFAULT_CLIENT_CONCURRENCY = 64
/** Share of an upstream's connections one route may hold when GATEWAY_ROUTE_CONNECTIONS is unset. */
export const DEFAULT_ROUTE_CONNECTIONS_SHARE = 0.75

/** Identity headers a client may have set for some other proxy; never forwarded. */
export const DEFAULT_STRIP_HEADERS = [
  'x-user-id',
  'x-user',
  'x-user-email',
  'x-user-roles',
  'x-remote-user',
  'remote-user',
  'x-forwarded-user',
  'x-forwarded-email',
  'x-auth-request-user',
  'x-auth-request-email',
  'x-auth-request-groups',
  'x-userinfo',
  'x-jwt-payload',
  'x-authenticated-userid',
  'x-consumer-id',
  'x-consumer-username',
]

/** Name of the assertion key file inside KEYS_DIR. */
export const ASSERTION_KEY_FILE_NAME = 'gateway-assertion-key.json'

/** Every gateway setting (the verification plugin's included); property names are the environment variables. */
export const GatewayConfigSchema = componentSchema({
  ...AuthConfigSchema,
  /** JSON route table (see docs/gateway.md); the built-in table when unset. */
  GATEWAY_ROUTES_FILE: Type.Optional(Type.String({ minLength: 1 })),
  /** Default time an upstream may take to answer (headers) and between body chunks. */
  GATEWAY_UPSTREAM_TIMEOUT: Duration('10s'),
  /** Processes serving the gateway's port (node:cluster); `keygate start gateway --workers N` overrides it. */
  GATEWAY_WORKERS: Type.Integer({ minimum: 1, maximum: 256, default: 1 }),
  /** Most pooled connections per upstream (per process). */
  GATEWAY_UPSTREAM_CONNECTIONS: Type.Integer({ minimum: 1, maximum: 4096, default: 128 }),
  /** Largest request body, in bytes. */
  GATEWAY_BODY_LIMIT: Type.Integer({ minimum: 0, default: DEFAULT_BODY_LIMIT_BYTES }),
  /** Request bodies up to this many bytes are read whole before an upstream connection is used. */
  GATEWAY_BODY_BUFFER: Type.Integer({
    minimum: 0,
    maximum: 16 * 1024 * 1024,
    default: DEFAULT_BODY_BUFFER_BYTES,
  }),
  /** Time to receive a buffered body (or the first GATEWAY_BODY_BUFFER bytes of a larger one): 408 after it. */
  GATEWAY_BODY_TIMEOUT: Duration('10s'),
  /** Least average rate of a larger body as it streams upstream, in bytes per second: 408 below it. */
  GATEWAY_BODY_MIN_RATE: Type.Integer({ minimum: 1, default: DEFAULT_BODY_MIN_RATE_BYTES_PER_S }),
  /** Requests one client (subject, else address) may have in progress (per process): 429 over it. */
  GATEWAY_CLIENT_CONCURRENCY: Type.Integer({ minimum: 1, default: DEFAULT_CLIENT_CONCURRENCY }),
  /** Upstream exchanges one route may have in progress (per process); default 3/4 of GATEWAY_UPSTREAM_CONNECTIONS. */
  GATEWAY_ROUTE_CONNECTIONS: Type.Optional(Type.Integer({ minimum: 1, maximum: 4096 })),
  /** Comma list of identity headers stripped from every client request (beside every `x-keygate-*`). */
  GATEWAY_STRIP_HEADERS: Type.String({ default: DEFAULT_STRIP_HEADERS.join(',') }),
  /**
   * Comma list of addresses or CIDRs (a load balancer in front) whose X-Forwarded-* headers are believed.
   * Default: none — the gateway is the edge, and a local client must not pick its own address.
   */
  GATEWAY_TRUST_PROXY: Type.String({ default: '' }),
  /** Rate limit of routes that set none: `<max>/<window>`, e.g. `600/1m`. */
  GATEWAY_RATE_LIMIT: RateLimitSetting('600/1m'),
  /** Redis shared by several gateways: one rate limit across all of them (lib/config.ts). */
  ...RedisSettings,
  /** Comma list of browser origins allowed by CORS (credentials included); empty: CORS off. */
  GATEWAY_CORS_ORIGINS: Type.String({ default: '' }),
  /** Lifetime of the gateway's identity assertions. */
  GATEWAY_ASSERTION_TTL: Duration('60s'),
  /** The gateway's Ed25519 assertion key (generated on first start); default `$KEYS_DIR/gateway-assertion-key.json`. */
  GATEWAY_ASSERTION_KEY_FILE: Type.Optional(Type.String({ minLength: 1 })),
  KEYS_DIR: Type.String({ default: 'keys', minLength: 1 }),
})

export type GatewayConfig = Config<typeof GatewayConfigSchema>

/** Reads and validates the gateway's configuration (from `process.env` unless `env` is given). */
export function loadGatewayConfig(env?: Record<string, string | undefined>): GatewayConfig {
  const config = loadConfig(GatewayConfigSchema, env === undefined ? {} : { env })
  trustedProxies(config.GATEWAY_TRUST_PROXY, 'GATEWAY_TRUST_PROXY')
  return config
}

/** Where the assertion key lives. */
export function assertionKeyFile(config: GatewayConfig): string {
  return config.GATEWAY_ASSERTION_KEY_FILE ?? join(config.KEYS_DIR, ASSERTION_KEY_FILE_NAME)
}

/**
 * GATEWAY_ROUTE_CONNECTIONS, or its default (3/4 of the pool). Checks the caps fit together: a route may
 * hold at most the whole pool, and one client fewer requests than the pool has connections.
 */
export function routeConnections(config: GatewayConfig): number {
  const pool = config.GATEWAY_UPSTREAM_CONNECTIONS
  if (config.GATEWAY_CLIENT_CONCURRENCY >= pool) {
    throw new Error(
      'keygate: invalid configuration: GATEWAY_CLIENT_CONCURRENCY must be below GATEWAY_UPSTREAM_CONNECTIONS (one client may never hold every upstream connection)',
    )
  }
  const perRoute =
    config.GATEWAY_ROUTE_CONNECTIONS ?? Math.max(1, Math.floor(pool * DEFAULT_ROUTE_CONNECTIONS_SHARE))
  if (perRoute > pool) {
    throw new Error(
      'keygate: invalid configuration: GATEWAY_ROUTE_CONNECTIONS must not exceed GATEWAY_UPSTREAM_CONNECTIONS',
    )
  }
  return perRoute
}
