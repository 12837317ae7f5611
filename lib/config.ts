/**
 * Configuration loading: the only reader of `process.env`. Each component declares one TypeBox schema whose
 * property names are the environment variables; values come from an optional JSON file (`KEYGATE_CONFIG`)
 * overridden by the environment. Validation fails fast with a message naming the bad setting and showing
 * what a valid value looks like; settings with a transform (`Duration`) are decoded here, once, so components
 * get milliseconds, never a string to parse. A file is strict: a key no component knows is refused with its
 * name and the nearest known one. Every secret setting (see `isSecretSetting`) can also be read from a file
 * named by `<SETTING>_FILE` (Docker and Kubernetes secrets).
 */
import { readFileSync } from 'node:fs'
import { closest, distance } from 'fastest-levenshtein'
import {
  type Static,
  type StaticDecode,
  type TObject,
  type TProperties,
  type TSchema,
  TransformKind,
  Type,
} from '@sinclair/typebox'
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

const DURATION_UNITS_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const
/** A number, then an optional unit: the one grammar the schema checks and `durationMs` reads. */
const DURATION_PATTERN = '^(\\d+(?:\\.\\d+)?)(ms|s|m|h|d)?$'
/** A count, a slash, then a duration: `600/1m`. */
const RATE_PATTERN = `^\\d+/${DURATION_PATTERN.slice(1)}`
/** What a valid duration looks like, as error messages say it. */
const DURATION_FORM = 'a duration like 250ms, 30s, 15m, 2h or 3d (a bare number is seconds)'

/**
 * Parses a duration such as `15m`, `30s`, `3d`, `250ms` or a plain number of seconds into milliseconds;
 * `setting` names the value in the error. Settings need not call it: a `Duration` setting is loaded as
 * milliseconds already (it takes only strings, so a loaded number cannot be parsed twice by mistake).
 * @example
 * durationMs('15m', 'ACCESS_TOKEN_TTL') // 900000
 */
export function durationMs(value: string, setting: string): number {
  const m = new RegExp(DURATION_PATTERN).exec(value.trim())
  if (!m) throw new Error(`keygate: invalid configuration: ${setting} must be ${DURATION_FORM}`)
  const unit = DURATION_UNITS_MS[(m[2] ?? 's') as keyof typeof DURATION_UNITS_MS]
  return Math.round(Number(m[1]) * unit)
}

/** Bounds of a duration setting, written as durations (`1s`, `1h`). */
export interface DurationBounds {
  min?: string
  max?: string
}

/**
 * A duration setting: written `15m` (or seconds) in the environment or the config file, loaded as a number
 * of milliseconds. Bounds are checked at load, with a message in the setting's own units.
 * @example
 * const Schema = componentSchema({ ACCESS_TOKEN_TTL: Duration('15m', { min: '1s' }) })
 * loadConfig(Schema).ACCESS_TOKEN_TTL // 900000
 */
export const Duration = (fallback: string, bounds: DurationBounds = {}) => {
  const minMs = bounds.min === undefined ? undefined : durationMs(bounds.min, 'min')
  const maxMs = bounds.max === undefined ? undefined : durationMs(bounds.max, 'max')
  const range =
    bounds.min !== undefined && bounds.max !== undefined
      ? `must be between ${bounds.min} and ${bounds.max}`
      : bounds.min !== undefined
        ? `must be at least ${bounds.min}`
        : `must be at most ${bounds.max}`
  return Type.Transform(
    Type.String({ default: fallback, pattern: DURATION_PATTERN, description: DURATION_FORM }),
  )
    .Decode((value): number => {
      const ms = durationMs(value, 'the duration')
      if ((minMs !== undefined && ms < minMs) || (maxMs !== undefined && ms > maxMs)) throw new Error(range)
      return ms
    })
    .Encode((ms) => `${ms}ms`)
}

const Port = (fallback: number) => Type.Integer({ minimum: 0, maximum: 65535, default: fallback })
/** A bind address: a host name or an IP address, IPv6 without brackets. */
const Host = (fallback: string) =>
  Type.String({
    default: fallback,
    pattern: '^[A-Za-z0-9._%:-]+$',
    description: 'a host name or IP address like 127.0.0.1, 0.0.0.0, :: or localhost',
  })
const Url = () =>
  Type.Optional(
    Type.String({
      pattern: '^https?://[^\\s/]+(/[^\\s]*)?$',
      description: 'an http(s) URL like https://keygate.example',
    }),
  )

/** Settings every component shares: where it binds, how it logs, and where its neighbours are. */
export const CommonSchema = {
  HOST: Host('127.0.0.1'),
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
  OPS_HOST: Host('127.0.0.1'),
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
  /**
   * Each service's own access-token audience (beside API_AUDIENCE): what a token addressed to that service
   * alone carries in `aud` (token exchange), so a token captured at one service is refused at the others.
   */
  PROFILE_AUDIENCE: Type.String({ default: 'keygate-profile', minLength: 1 }),
  ORDERS_AUDIENCE: Type.String({ default: 'keygate-orders', minLength: 1 }),
  FILES_AUDIENCE: Type.String({ default: 'keygate-files', minLength: 1 }),
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

/**
 * A component's config type: its schema's decoded static type (durations in milliseconds), with every
 * neighbour URL resolved.
 */
export type Config<S extends TObject> = StaticDecode<S> &
  Required<Pick<CommonConfig, `${Uppercase<Component>}_URL` | 'PUBLIC_URL'>>

/**
 * A database setting: a SQLite file (`data/profile.db`, `sqlite:path`, `:memory:`) or a PostgreSQL URL. Any
 * other scheme (`mysql://…`) is refused rather than taken for a file name, and a PostgreSQL URL must parse.
 */
export const DatabaseUrl = () =>
  Type.Optional(
    Type.Transform(
      Type.String({
        minLength: 1,
        // A scheme other than sqlite: or postgres(ql):// is a mistake, not a directory name.
        pattern: '^(postgres(ql)?://\\S+|sqlite:.+|:memory:|(?![A-Za-z][A-Za-z0-9+.-]*:).+)$',
        description:
          'a SQLite file path (data/app.db, sqlite:data/app.db) or a PostgreSQL URL like postgres://user:password@host:5432/keygate',
      }),
    )
      .Decode((value): string => {
        if (/^postgres(ql)?:\/\//.test(value) && !URL.canParse(value)) {
          throw new Error('must be a valid PostgreSQL URL like postgres://user:password@host:5432/keygate')
        }
        return value
      })
      .Encode((value) => value),
  )

/**
 * REDIS_URL and REDIS_KEY_PREFIX, for the components that share counters through Redis (the gateways' rate
 * limits, the issuers' login throttles): one definition, so both read them alike.
 */
export const RedisSettings = {
  /** `redis://host:6379` or `rediss://…` with TLS. Unset: each component keeps its counters as without Redis. */
  REDIS_URL: Type.Optional(
    Type.String({ pattern: '^rediss?://\\S+$', description: 'a Redis URL like redis://127.0.0.1:6379' }),
  ),
  /** Prefix of every key keygate writes in Redis (several deployments may share one server). */
  REDIS_KEY_PREFIX: Type.String({ default: 'keygate:', minLength: 1 }),
}

/** Every setting name some component declares: what a KEYGATE_CONFIG file may hold (it is shared by all). */
const knownSettings = new Set<string>()

/**
 * Whether a setting holds a secret (a password, a key, a URL that may carry credentials): such a setting
 * may be given as `<SETTING>_FILE`, the path of a file holding the value.
 */
export function isSecretSetting(name: string): boolean {
  return /(_SECRET|_PASSWORD|_ENCRYPTION_KEY|DATABASE_URL|REDIS_URL)$/.test(name)
}

/**
 * Builds a component schema from its own properties plus the common ones. Its setting names become known
 * to every KEYGATE_CONFIG file check in this process (`keygate start` loads every component's schema).
 */
export function componentSchema<P extends TProperties>(properties: P) {
  const schema = Type.Object({ ...CommonSchema, ...properties })
  for (const name of Object.keys(schema.properties)) {
    knownSettings.add(name)
    if (isSecretSetting(name)) knownSettings.add(`${name}_FILE`)
  }
  return schema
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
  readSecretFiles(schema, fromFile, fromEnv, env)
  let config: Record<string, unknown>
  try {
    config = envSchema({ schema, data: [fromFile, fromEnv], env: false })
  } catch (err) {
    throw new Error(`keygate: invalid configuration: ${describeInvalid(err, schema)}`)
  }
  decodeSettings(schema, config)
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
  checkUrls(config)
  return config as Config<S>
}

/**
 * Every neighbour URL must parse: one given with a bad host names itself, one derived from HOST names HOST
 * and the port it was built with (the schema's pattern lets through a few strings `URL` refuses).
 */
function checkUrls(config: Record<string, unknown>): void {
  for (const key of [...COMPONENTS.map((c) => `${c.toUpperCase()}_URL`), 'PUBLIC_URL']) {
    if (URL.canParse(config[key] as string)) continue
    const derived =
      key !== 'PUBLIC_URL' &&
      config[key] ===
        `http://${urlHost(config.HOST as string)}:${config[key.replace(/_URL$/, '_PORT')] as number}`
    throw new Error(
      derived
        ? `keygate: invalid configuration: HOST must be a host name or IP address (${key} would be ${config[key] as string})`
        : `keygate: invalid configuration: ${key} must be an http(s) URL like https://keygate.example`,
    )
  }
}

/**
 * `<SETTING>_FILE` (from the environment or the file) is read into `<SETTING>` for each secret setting of the
 * schema, trailing newline dropped; giving both is refused, since which one wins would be a guess.
 */
function readSecretFiles(
  schema: TObject,
  fromFile: Record<string, unknown>,
  fromEnv: Record<string, unknown>,
  env: Record<string, string | undefined>,
): void {
  for (const name of Object.keys(schema.properties).filter(isSecretSetting)) {
    const path = env[`${name}_FILE`] ?? fromFile[`${name}_FILE`]
    if (path === undefined) continue
    if (typeof path !== 'string' || path === '') {
      throw new Error(`keygate: invalid configuration: ${name}_FILE must be the path of a file`)
    }
    if (fromEnv[name] !== undefined || fromFile[name] !== undefined) {
      throw new Error(`keygate: invalid configuration: set ${name} or ${name}_FILE, not both`)
    }
    try {
      fromEnv[name] = readFileSync(path, 'utf8').replace(/\r?\n$/, '')
    } catch (err) {
      throw new Error(
        `keygate: invalid configuration: ${name}_FILE: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      )
    }
  }
}

/**
 * Turns each validated setting whose schema is a transform (`Duration`, …) into the value the code runs on,
 * once, here: no component parses a setting again. A decode that refuses a value throws a message that
 * follows the setting's name (`must be at least 1s`).
 */
function decodeSettings(schema: TObject, config: Record<string, unknown>): void {
  for (const [name, property] of Object.entries(schema.properties as Record<string, TSchema>)) {
    const transform = (property as { [TransformKind]?: { Decode: (value: unknown) => unknown } })[
      TransformKind
    ]
    if (transform === undefined || config[name] === undefined) continue
    try {
      config[name] = transform.Decode(config[name])
    } catch (err) {
      throw new Error(`keygate: invalid configuration: ${name} ${(err as Error).message}`)
    }
  }
}

interface AjvIssue {
  instancePath: string
  keyword: string
  message?: string
  params: { allowedValues?: unknown[]; missingProperty?: string }
}

function describeInvalid(err: unknown, schema: TObject): string {
  const issues = (err as { errors?: AjvIssue[] }).errors
  if (!issues?.length) return (err as Error).message
  return issues
    .map((i) => {
      const name = i.instancePath.replace(/^\//, '') || i.params.missingProperty || 'config'
      // A pattern is for the machine; the person gets the form a valid value takes (the schema's description).
      const form = (schema.properties as Record<string, TSchema | undefined>)[name]?.description
      if (i.keyword === 'pattern' && typeof form === 'string') return `${name} must be ${form}`
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
  const unknown = Object.keys(parsed).filter((key) => !knownSettings.has(key))
  if (unknown.length > 0) {
    const described = unknown.map((key) => {
      const near = nearestSetting(key)
      return near === undefined ? key : `${key} (did you mean ${near}?)`
    })
    throw new Error(
      `keygate: invalid configuration: KEYGATE_CONFIG file ${file} has unknown setting${unknown.length > 1 ? 's' : ''} ${described.join(', ')}`,
    )
  }
  return parsed as Record<string, unknown>
}

/** The known setting a mistyped key most likely meant, if one is close enough to be worth saying. */
function nearestSetting(key: string): string | undefined {
  if (knownSettings.size === 0) return undefined
  const upper = key.toUpperCase()
  const near = closest(upper, [...knownSettings])
  // A third of the name (at least two edits) wrong still reads as a typo; more is another name altogether.
  return distance(upper, near) <= Math.max(2, Math.floor(key.length / 3)) ? near : undefined
}

/** The host to put in a URL for a bind address: a wildcard bind is reached on loopback. */
function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1'
  return host.includes(':') ? `[${host}]` : host
}

/** A count per window, as a rate-limit setting loads. */
export interface RatePerWindow {
  readonly max: number
  readonly windowMs: number
}

/**
 * A rate-limit setting: written `<max>/<window>` (`600/1m`), loaded as `{ max, windowMs }`; at least one
 * request per window of at least `minWindow`.
 * @example
 * const Schema = componentSchema({ GATEWAY_RATE_LIMIT: RateLimitSetting('600/1m') })
 * loadConfig(Schema).GATEWAY_RATE_LIMIT // { max: 600, windowMs: 60000 }
 */
export const RateLimitSetting = (fallback: string, minWindow = '1ms') => {
  const minWindowMs = durationMs(minWindow, 'minWindow')
  return Type.Transform(
    Type.String({
      default: fallback,
      pattern: RATE_PATTERN,
      description: 'a count and a duration like 600/1m (600 requests a minute)',
    }),
  )
    .Decode((value): RatePerWindow => {
      const [max, window] = value.split('/') as [string, string]
      const limit = { max: Number(max), windowMs: durationMs(window, 'the window') }
      if (limit.max < 1 || limit.windowMs < minWindowMs) {
        throw new Error(
          minWindowMs > 1
            ? `must allow at least 1 request per window of at least ${minWindow}`
            : 'must allow at least 1 request per window',
        )
      }
      return limit
    })
    .Encode((limit) => `${limit.max}/${limit.windowMs}ms`)
}

/**
 * Splits a comma-list setting (`a, b,,c`) into its trimmed, non-empty entries, lower-cased when `lowerCase`
 * (header names).
 * @example
 * commaList(' X-User-Id, ,x-other ', true) // ['x-user-id', 'x-other']
 */
export function commaList(value: string, lowerCase = false): string[] {
  return value
    .split(',')
    .map((v) => (lowerCase ? v.trim().toLowerCase() : v.trim()))
    .filter((v) => v !== '')
}
