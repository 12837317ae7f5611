/**
 * What every keygate process shares: its logger, its Fastify defaults, and listening with graceful shutdown.
 * Components build with `serverOptions()`; only entry points call `listen()`.
 */
import cluster from 'node:cluster'
import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import closeWithGrace from 'close-with-grace'
import {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
  LogController,
} from 'fastify'
import pino, { type DestinationStream, type Logger } from 'pino'
import type {} from './operations.js'

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

export interface ServerOptions {
  logger: FastifyBaseLogger
  bodyLimit?: number
  /** Addresses whose `X-Forwarded-*` headers are believed (a gateway in front). Default: loopback only. */
  trustProxy?: boolean | string | string[]
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
): FastifyServerOptions & { loggerInstance: FastifyBaseLogger } {
  return {
    loggerInstance: options.logger,
    genReqId: requestId,
    bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT,
    trustProxy: options.trustProxy ?? ['127.0.0.1', '::1'],
    return503OnClosing: true,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    routerOptions: { maxParamLength: 2048 },
    ...(options.requestLog === 'failures' ? { logController: new FailuresLogController() } : {}),
  }
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
