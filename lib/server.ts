/**
 * What every keygate process shares: its logger, its Fastify defaults, and listening with graceful shutdown.
 * Components build with `serverOptions()`; only entry points call `listen()`.
 */
import cluster from 'node:cluster'
import { randomUUID } from 'node:crypto'
import type { IncomingMessage, Server } from 'node:http'
import { isIP } from 'node:net'
import closeWithGrace from 'close-with-grace'
import {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyHttpOptions,
  LogController,
} from 'fastify'
import pino, { type DestinationStream, type Logger } from 'pino'
import { answerClientError, answerError, type ErrorCode, KeygateError } from './errors.js'
import type {} from './operations.js'
import { requestLogger } from './request-logger.js'

/** Grace period for in-flight requests on SIGTERM/SIGINT, in milliseconds. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000
/** Default JSON body limit, in bytes. */
export const DEFAULT_BODY_LIMIT = 64 * 1024

/**
 * Header and field names whose values are credentials. pino replaces them wherever they appear; components
 * never log headers or bodies in the first place, this is the second line.
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-csrf-token"]',
  'req.headers["x-keygate-assertion"]',
  'req.headers["x-keygate-feed-secret"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  '*.password',
  '*.access_token',
  '*.refresh_token',
  '*.csrf_token',
  '*.token',
]

const JWT_LIKE = /[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/g
const OPAQUE_LIKE = /[A-Za-z0-9_-]{43,}/g

/**
 * A URL as it may be logged: query strings dropped and anything that looks like a token (a JWT or a long
 * opaque value in a path segment, such as a one-time download link) replaced.
 */
export function redactUrl(url: string | undefined): string | undefined {
  if (url === undefined) return undefined
  const q = url.indexOf('?')
  const path = q === -1 ? url : `${url.slice(0, q)}?[redacted]`
  return path.replace(JWT_LIKE, '[redacted]').replace(OPAQUE_LIKE, '[redacted]')
}

export interface LoggerOptions {
  name: string
  level?: string
  /** `auto` (pretty only on a terminal), `true` or `false`. */
  pretty?: string
  /** Where to write; tests pass a capture stream. Defaults to stdout. */
  stream?: DestinationStream
}

/** The pino logger of a component: JSON lines (pretty on a terminal), credentials redacted, URLs cleaned. */
export function createLogger(options: LoggerOptions): Logger {
  const pretty =
    options.stream === undefined &&
    (options.pretty === 'true' || ((options.pretty ?? 'auto') === 'auto' && process.stdout.isTTY === true))
  const config: pino.LoggerOptions = {
    name: options.name,
    level: options.level ?? 'info',
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    serializers: {
      req: (req: FastifyRequest) => ({
        id: req.id,
        method: req.method,
        url: redactUrl(req.url),
        // A request logged as it completes may have lost its socket (its body streamed upstream and its
        // connection gone): request.ip would throw reading it, and a throwing serializer crashes the process.
        remoteAddress: req.raw.socket ? req.ip : undefined,
      }),
      res: (reply: FastifyReply) => ({ statusCode: reply.statusCode }),
      err: pino.stdSerializers.err,
    },
  }
  if (pretty) {
    return pino({
      ...config,
      transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l' } },
    })
  }
  // Synchronous writes to stdout. pino's default (asynchronous) destination flushes synchronously at exit,
  // and sonic-boom's flushSync retries a write that failed with EPIPE forever: a component whose reader had
  // gone (its supervisor killed, `npm start | head`) hung in process.exit instead of exiting.
  return pino(config, options.stream ?? pino.destination({ dest: 1, sync: true }))
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

/** Takes a sane client `x-request-id` (so a trace spans the hops) or makes one. */
export function requestId(req: IncomingMessage): string {
  const given = req.headers['x-request-id']
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID()
}

/**
 * Fastify's per-request log lines with a proxy's levels: a request that was answered below 400 is logged at
 * debug (`incoming request` and `request completed`), one that was refused or failed (400 and above, or an
 * error) at info or error as before. At the default level a proxy then writes nothing for the requests it
 * simply passed on — formatting, redacting and writing two lines each was a quarter of the gateway's CPU —
 * while every refusal keeps its line (and the auth plugin's `authentication refused` line with the subject
 * and the reason).
 */
export class FailuresLogController extends LogController {
  override incomingRequest(request: FastifyRequest): void {
    if (this.isLogDisabled(request)) return
    request.log.debug({ req: request }, 'incoming request')
  }

  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    if (this.isLogDisabled(request)) return
    if (error) {
      reply.log.error(
        { req: request, res: reply, err: error, responseTime: reply.elapsedTime },
        'request errored',
      )
    } else if (reply.statusCode >= 400) {
      // The request line too: at info nothing was logged when it came in.
      reply.log.info({ req: request, res: reply, responseTime: reply.elapsedTime }, 'request completed')
    } else {
      reply.log.debug({ res: reply, responseTime: reply.elapsedTime }, 'request completed')
    }
  }
}

/** Names proxy-addr (Fastify's `trustProxy`) accepts for well-known ranges besides addresses and CIDRs. */
const NAMED_RANGES = new Set(['loopback', 'linklocal', 'uniquelocal'])

/**
 * Parses a trusted-proxy setting (`ISSUER_TRUST_PROXY`, `GATEWAY_TRUST_PROXY`, `SERVICE_TRUST_PROXY`): a
 * comma list of addresses, CIDR ranges (`10.0.0.0/8`, `fd00::/8`) or proxy-addr's names (`loopback`,
 * `linklocal`, `uniquelocal`). Empty trusts no one. Throws an Error naming `setting` for anything else, so
 * a typo fails at start instead of silently trusting no one (or, worse, proxy-addr throwing per request).
 * @example
 * trustedProxies('172.30.0.10, 10.0.0.0/8', 'ISSUER_TRUST_PROXY') // ['172.30.0.10', '10.0.0.0/8']
 */
export function trustedProxies(value: string, setting: string): string[] {
  const entries = value
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v !== '')
  for (const entry of entries) {
    if (!validProxyEntry(entry)) {
      throw new Error(
        `keygate: invalid configuration: ${setting} must be a comma-separated list of addresses or CIDR ranges (got ${JSON.stringify(entry)})`,
      )
    }
  }
  return entries
}

function validProxyEntry(entry: string): boolean {
  if (NAMED_RANGES.has(entry)) return true
  const slash = entry.indexOf('/')
  const address = slash === -1 ? entry : entry.slice(0, slash)
  const family = isIP(address)
  if (family === 0) return false
  if (slash === -1) return true
  const prefix = entry.slice(slash + 1)
  if (!/^\d{1,3}$/.test(prefix)) return false
  return Number(prefix) <= (family === 4 ? 32 : 128)
}

/**
 * How long a listener waits on a client, in milliseconds. A client that is too slow with its request's head
 * or with the whole request gets 408 (keygate's JSON, the connection closed); a keep-alive connection idle
 * between requests, or one on which nothing moves either way (a client that stopped reading its answer), is
 * closed without an answer, since none is possible.
 */
export interface ListenerTimeouts {
  /** Until the request's head has arrived (Node's `headersTimeout`). */
  headersMs: number
  /** Until the whole request, body included, has arrived (Node's `requestTimeout`). */
  requestMs: number
  /** Idle keep-alive connections between requests (Node's `keepAliveTimeout`). */
  keepAliveMs: number
  /** No byte read or written on the connection (Fastify's `connectionTimeout`, a socket timeout). */
  idleMs: number
}

/** The defaults of HTTP_HEADERS_TIMEOUT, HTTP_REQUEST_TIMEOUT, HTTP_KEEP_ALIVE_TIMEOUT and HTTP_IDLE_TIMEOUT. */
export const DEFAULT_LISTENER_TIMEOUTS: Readonly<ListenerTimeouts> = {
  headersMs: 10_000,
  requestMs: 60_000,
  keepAliveMs: 5_000,
  idleMs: 60_000,
}

/**
 * How often Node checks its connections against the head and request timeouts, at most, in milliseconds.
 * Node's own default (30 s) would let a 10 s timeout run for 40 s; the check walks the connections that
 * have a request in progress, in C++, so checking every second costs next to nothing.
 */
export const MAX_CONNECTIONS_CHECK_INTERVAL_MS = 1_000

/**
 * The listener timeouts of a component's config (the HTTP_*_TIMEOUT settings every component has, loaded as
 * milliseconds).
 */
export function listenerTimeouts(config: {
  HTTP_HEADERS_TIMEOUT: number
  HTTP_REQUEST_TIMEOUT: number
  HTTP_KEEP_ALIVE_TIMEOUT: number
  HTTP_IDLE_TIMEOUT: number
}): ListenerTimeouts {
  const timeouts = {
    headersMs: config.HTTP_HEADERS_TIMEOUT,
    requestMs: config.HTTP_REQUEST_TIMEOUT,
    keepAliveMs: config.HTTP_KEEP_ALIVE_TIMEOUT,
    idleMs: config.HTTP_IDLE_TIMEOUT,
  }
  for (const [name, ms] of [
    ['HTTP_HEADERS_TIMEOUT', timeouts.headersMs],
    ['HTTP_REQUEST_TIMEOUT', timeouts.requestMs],
    ['HTTP_KEEP_ALIVE_TIMEOUT', timeouts.keepAliveMs],
    ['HTTP_IDLE_TIMEOUT', timeouts.idleMs],
  ] as const) {
    if (ms < 1) throw new Error(`keygate: invalid configuration: ${name} must be at least 1ms`)
  }
  if (timeouts.headersMs > timeouts.requestMs) {
    throw new Error(
      'keygate: invalid configuration: HTTP_HEADERS_TIMEOUT must not exceed HTTP_REQUEST_TIMEOUT (the request includes its head)',
    )
  }
  return timeouts
}

export interface ServerOptions {
  logger: FastifyBaseLogger
  bodyLimit?: number
  /** How long the listener waits on clients; default DEFAULT_LISTENER_TIMEOUTS. */
  timeouts?: ListenerTimeouts
  /**
   * Addresses and CIDR ranges whose `X-Forwarded-*` headers are believed (see `trustedProxies`): the
   * client address (`request.ip`) is then the last one in `X-Forwarded-For` that none of them vouches for.
   * Default: none — the peer's own address, whatever headers it sends.
   */
  trustProxy?: readonly string[]
  /**
   * Which requests get info-level log lines: `all` (Fastify's default: every request, in and out) or
   * `failures` (status 400 and above, or an error; the rest at debug — see FailuresLogController).
   * Default `all`.
   */
  requestLog?: 'all' | 'failures'
}

/** Fastify defaults for every component: strict validation (unknown fields refused), request ids, limits. */
export function serverOptions(
  options: ServerOptions,
): FastifyHttpOptions<Server> & { loggerInstance: FastifyBaseLogger } {
  const timeouts = options.timeouts ?? DEFAULT_LISTENER_TIMEOUTS
  return {
    loggerInstance: options.logger,
    genReqId: requestId,
    childLoggerFactory: requestLogger,
    // Node's own head and request timeouts (not Fastify's), so a slow client gets its 408 from the parser.
    http: {
      headersTimeout: timeouts.headersMs,
      requestTimeout: timeouts.requestMs,
      connectionsCheckingInterval: Math.max(
        10,
        Math.min(MAX_CONNECTIONS_CHECK_INTERVAL_MS, Math.floor(timeouts.headersMs / 4)),
      ),
    },
    requestTimeout: timeouts.requestMs,
    keepAliveTimeout: timeouts.keepAliveMs,
    connectionTimeout: timeouts.idleMs,
    clientErrorHandler: answerClientError,
    bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT,
    // Always a list (never false), so `request.ips` is defined even when it trusts no one.
    trustProxy: [...(options.trustProxy ?? [])],
    return503OnClosing: true,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    routerOptions: { maxParamLength: 2048 },
    // A malformed URL (`/%zz`) is refused before routing; Fastify's own answer would echo the raw path.
    frameworkErrors: answerError,
    ...(options.requestLog === 'failures' ? { logController: new FailuresLogController() } : {}),
  }
}

export interface HttpHygieneOptions {
  /**
   * True for a component whose answers are its own API (the issuer, the services): JSON answers get
   * `Cache-Control: no-store` (unless the route set its own) and `X-Content-Type-Options: nosniff`. False
   * for the gateway, whose proxied answers pass as the upstream sent them (its own errors get both anyway).
   */
  apiAnswers: boolean
}

/** `application/json`, and the `+json` types (`application/jwk-set+json`), with any parameters. */
const JSON_MEDIA_TYPE = /^application\/(?:[\w.-]+\+)?json\s*(?:;|$)/i

/**
 * Installs what every component does at the HTTP level beside its routes: requests whose framing or target
 * is ambiguous are refused before anything else runs (see `ambiguityOf`), with `Connection: close`; and,
 * with `apiAnswers`, the headers of API answers (see HttpHygieneOptions). Register it first, right after
 * the error handling, so no other hook (nor a proxy) sees a refused request.
 * @example
 * registerErrorHandling(app)
 * registerHttpHygiene(app, { apiAnswers: true })
 */
export function registerHttpHygiene(app: FastifyInstance, options: HttpHygieneOptions): void {
  app.addHook('onRequest', (request, reply, done) => {
    const refusal = ambiguityOf(request.raw)
    if (refusal === undefined) return done()
    // What follows on this connection cannot be trusted to be framed as we would read it.
    reply.header('connection', 'close')
    done(new KeygateError(refusal))
  })
  if (options.apiAnswers) {
    app.addHook('onSend', (_request, reply, payload, done) => {
      const type = reply.getHeader('content-type')
      if (typeof type === 'string' && JSON_MEDIA_TYPE.test(type)) {
        reply.header('x-content-type-options', 'nosniff')
        if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store')
      }
      done(null, payload)
    })
  }
}

/**
 * Why a request is refused before routing, or undefined. Node's parser accepts both of these:
 * - more than one `Host` line: RFC 9112 §3.2 requires a 400 (two hops may each pick a different one);
 * - a transfer coding other than plain `chunked` (`gzip, chunked`): RFC 9112 §6.1 says 501 for a coding
 *   the server does not understand; Node would unchunk the body and pass the gzip bytes on as if plain.
 */
function ambiguityOf(req: IncomingMessage): ErrorCode | undefined {
  const raw = req.rawHeaders
  let hosts = 0
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    if (name.length === 4 && name.toLowerCase() === 'host' && ++hosts > 1) return 'KG_HOST_INVALID'
  }
  const codings = req.headers['transfer-encoding']
  if (codings !== undefined && codings.trim().toLowerCase() !== 'chunked') {
    return 'KG_TRANSFER_CODING_UNSUPPORTED'
  }
  return undefined
}

export interface ListenOptions {
  host: string
  port: number
  /**
   * Where the instance's ops listener (`app.operations`: `/healthz`, `/readyz`, `/metrics`) binds: OPS_HOST
   * and the component's ops port. Port 0 picks a free one (tests).
   */
  ops: { host: string; port: number }
  /** Called after the server closed, before the process exits (close stores, pools, children). */
  onClose?: () => Promise<void> | void
}

/** Where a started component listens: its public address and its ops listener's. */
export interface ListeningAddresses {
  address: string
  ops: string
}

/**
 * Listens on the public address and the ops address, and installs graceful shutdown: on SIGTERM/SIGINT the
 * server stops accepting, drains in-flight requests for up to DEFAULT_SHUTDOWN_GRACE_MS, then exits. If
 * either listener cannot open, the instance is closed before the error is rethrown.
 */
export async function listen(app: FastifyInstance, options: ListenOptions): Promise<ListeningAddresses> {
  const address = await app.listen({ host: options.host, port: options.port })
  let ops: string
  try {
    ops = await app.operations.listen({ host: options.ops.host, port: options.ops.port })
  } catch (err) {
    await app.close().catch(() => {})
    throw err
  }
  closeWithGrace({ delay: DEFAULT_SHUTDOWN_GRACE_MS, logger: false }, async ({ signal, err }) => {
    if (err) app.log.error({ err }, 'shutting down after an error')
    else app.log.info({ signal }, 'shutting down')
    await app.close()
    await options.onClose?.()
  })
  reportListening({ address, ops }, () => {
    if (!(closeWithGrace as { closing?: boolean }).closing) process.kill(process.pid, 'SIGTERM')
  })
  return { address, ops }
}

/**
 * Under a parent holding an IPC channel to us (`npm start`'s supervisor, a cluster primary, the bench): says
 * where we listen (`{ type: 'listening', address, ops }`), and calls `onParentGone` if that channel closes — the parent died without stopping us
 * (SIGKILL, a crash) — so we shut down rather than live on orphaned, holding the port. A cluster worker
 * leaves that to node:cluster, which ends workers whose primary is gone.
 */
export function reportListening(addresses: ListeningAddresses, onParentGone: () => void): void {
  if (!process.send) return
  process.send({ type: 'listening', ...addresses })
  if (cluster.isWorker) return
  process.once('disconnect', onParentGone)
  // A 'disconnect' listener holds the channel open; it must not keep the process alive once its work is done.
  process.channel?.unref()
}
