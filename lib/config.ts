/**
 * Configuration loading: the only reader of `process.env`. Each component declares one TypeBox schema whose
 * property names are the environment variables; values come from an optional JSON file (`KEYGATE_CONFIG`)
 * overridden by the environment. Validation fails fast with a message naming the bad setting.
 */
import { readFileSync } from 'node:fs'
import { Type, type Static, type TObject, type TProperties } from '@sinclair/typebox'
import envSchema from 'env-schema'

/** Default ports of the components (ISSUER_PORT, GATEWAY_PORT, …). */
export const DEFAULT_PORTS = {
  issuer: 4000,
  gateway: 8080,
  profile: 4101,
  orders: 4102,
  files: 4103,
} as const
export type Component = keyof typeof DEFAULT_PORTS
/**
 * Default ops ports (ISSUER_OPS_PORT, GATEWAY_OPS_PORT, …): where each component serves `/readyz` and
 * `/metrics`, bound to OPS_HOST (loopback) — never on its public port. Chosen apart from the public ports so
 * that `npm start` runs all five components on one machine.
 */
export const DEFAULT_OPS_PORTS = {
  issuer: 9400,
  gateway: 9480,
  profile: 9401,
  orders: 9402,
  files: 9403,
} as const satisfies Record<Component, number>
export const COMPONENTS = Object.keys(DEFAULT_PORTS) as Component[]

/** A string setting limited to a list of values. */
export const OneOf = <const V extends string>(values: readonly V[], fallback: V) =>
  Type.Unsafe<V>({ type: 'string', enum: values, default: fallback })

/** A duration setting in the schema (string like `15m`, or seconds). */
export const Duration = (fallback: string) =>
  Type.String({ default: fallback, pattern: '^\\d+(\\.\\d+)?(ms|s|m|h|d)?$' })

const Port = (fallback: number) => Type.Integer({ minimum: 0, maximum: 65535, default: fallback })
const Url = () => Type.Optional(Type.String({ pattern: '^https?://[^\\s/]+(/[^\\s]*)?$' }))

/** Settings every component shares: where it binds, how it logs, and where its neighbours are. */
export const CommonSchema = {
  HOST: Type.String({ default: '127.0.0.1', minLength: 1 }),
  LOG_LEVEL: OneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info'),
  /** Pretty logs: `auto` means only when stdout is a terminal. */
  LOG_PRETTY: OneOf(['auto', 'true', 'false'], 'auto'),
  /** Directory for runtime data (SQLite files, generated secrets). */
  DATA_DIR: Type.String({ default: 'data', minLength: 1 }),
  ISSUER_PORT: Port(DEFAULT_PORTS.issuer),
  GATEWAY_PORT: Port(DEFAULT_PORTS.gateway),
  PROFILE_PORT: Port(DEFAULT_PORTS.profile),
  ORDERS_PORT: Port(DEFAULT_PORTS.orders),
  FILES_PORT: Port(DEFAULT_PORTS.files),
  /** Where the ops listeners (`/readyz`, `/metrics`) bind: loopback unless an operator opens them. */
  OPS_HOST: Type.String({ default: '127.0.0.1', minLength: 1 }),
  ISSUER_OPS_PORT: Port(DEFAULT_OPS_PORTS.issuer),
  GATEWAY_OPS_PORT: Port(DEFAULT_OPS_PORTS.gateway),
  PROFILE_OPS_PORT: Port(DEFAULT_OPS_PORTS.profile),
  ORDERS_OPS_PORT: Port(DEFAULT_OPS_PORTS.orders),
  FILES_OPS_PORT: Port(DEFAULT_OPS_PORTS.files),
  ISSUER_URL: Url(),
  GATEWAY_URL: Url(),
  PROFILE_URL: Url(),
  ORDERS_URL: Url(),
  FILES_URL: Url(),
  /** The gateway's address as browsers and users see it (links handed out, allowed origin). Default GATEWAY_URL. */
  PUBLIC_URL: Url(),
  /** Time a client has to send a request's head (408 after it); see lib/server.ts ListenerTimeouts. */
  HTTP_HEADERS_TIMEOUT: Duration('10s'),
  /** Time a client has to send a whole request, head and body (408 after it). */
  HTTP_REQUEST_TIMEOUT: Duration('60s'),
  /** An idle keep-alive connection is closed after this. */
  HTTP_KEEP_ALIVE_TIMEOUT: Duration('5s'),
  /** A connection on which nothing is read or written for this long is closed (slow readers included). */
  HTTP_IDLE_TIMEOUT: Duration('60s'),
}

type CommonConfig = Static<TObject<typeof CommonSchema>>

/** A component's config type: its schema's static type, with every neighbour URL resolved. */
export type Config<S extends TObject> = Static<S> &
  Required<Pick<CommonConfig, `${Uppercase<Component>}_URL` | 'PUBLIC_URL'>>

/** Builds a component schema from its own properties plus the common ones. */
export function componentSchema<P extends TProperties>(properties: P) {
  return Type.Object({ ...CommonSchema, ...properties })
}

export interface LoadConfigOptions {
  /** Variables to read; defaults to `process.env`. Tests pass their own. */
  env?: Record<string, string | undefined>
  /** A JSON file of settings (same names as the variables); defaults to `$KEYGATE_CONFIG` when set. */
  file?: string
}

/**
 * Reads and validates a component's configuration.
 * @example
 * const config = loadConfig(IssuerConfigSchema)
 * console.log(config.ISSUER_URL)
 */
export function loadConfig<S extends TObject>(schema: S, options: LoadConfigOptions = {}): Config<S> {
  const env = options.env ?? process.env
  const file = options.file ?? env.KEYGATE_CONFIG
  const fromFile = file ? readConfigFile(file) : {}
  const fromEnv = Object.fromEntries(
    Object.keys(schema.properties)
      .filter((k) => env[k] !== undefined)
      .map((k) => [k, env[k]]),
  )
  let config: Record<string, unknown>
  try {
    config = envSchema({ schema, data: [fromFile, fromEnv], env: false })
  } catch (err) {
    throw new Error(`keygate: invalid configuration: ${describeInvalid(err)}`)
  }
  for (const name of Object.keys(DEFAULT_PORTS) as Component[]) {
    const key = `${name.toUpperCase()}_URL`
    config[key] ??=
      `http://${urlHost(config.HOST as string)}:${config[`${name.toUpperCase()}_PORT`] as number}`
    config[key] = (config[key] as string).replace(/\/+$/, '')
  }
  config.PUBLIC_URL = ((config.PUBLIC_URL as string | undefined) ?? (config.GATEWAY_URL as string)).replace(
    /\/+$/,
    '',
  )
  return config as Config<S>
}

interface AjvIssue {
  instancePath: string
  message?: string
  params: { allowedValues?: unknown[]; missingProperty?: string }
}

function describeInvalid(err: unknown): string {
  const issues = (err as { errors?: AjvIssue[] }).errors
  if (!issues?.length) return (err as Error).message
  return issues
    .map((i) => {
      const name = i.instancePath.replace(/^\//, '') || i.params.missingProperty || 'config'
      const allowed = i.params.allowedValues ? ` (${i.params.allowedValues.join(', ')})` : ''
      return `${name} ${i.message ?? 'is invalid'}${allowed}`
    })
    .join('; ')
}

function readConfigFile(file: string): Record<string, unknown> {
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    throw new Error(`keygate: cannot read KEYGATE_CONFIG file ${file}: ${(err as Error).message}`)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error(`keygate: KEYGATE_CONFIG file ${file} must hold a JSON object of settings`)
  }
  return parsed as Record<string, unknown>
}

/** The host to put in a URL for a bind address: a wildcard bind is reached on loopback. */
function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1'
  return host.includes(':') ? `[${host}]` : host
}

/** Parses a duration setting such as `15m`, `30s`, `3d` or a plain number of seconds into milliseconds. */
export function durationMs(value: string | number, setting: string): number {
  if (typeof value === 'number') return value * 1000
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(value.trim())
  if (!m) throw new Error(`keygate: invalid configuration: ${setting} must be a duration like 30s, 15m or 3d`)
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 's') as 'ms']
  return Math.round(Number(m[1]) * unit)
}
