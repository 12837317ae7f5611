/**
 * Fastify's per-request logger, made when something is logged rather than when the request arrives. Fastify
 * gives every request a pino child bound to its id; making one serializes the bindings through the logger's
 * redaction, about 3 µs a request, or 3 % of the gateway's CPU on a proxied request. A component that logs
 * only refusals and failures (FailuresLogController) writes nothing for most requests, so it should not pay
 * for a logger it never uses. The lines that are written are the child's, with the same bindings, level and
 * redaction as before.
 */
import type { FastifyBaseLogger, FastifyServerOptions } from 'fastify'
import type { Bindings, ChildLoggerOptions, Level, Logger } from 'pino'

/** Writes at `level`, on the child, made now if this is the first line. */
type LevelMethod = (this: LazyRequestLogger, ...args: unknown[]) => void

function writer(level: Level): LevelMethod {
  return function (...args) {
    if (!this.parent.isLevelEnabled(level)) return
    const logger = this.logger()
    ;(logger[level] as (...args: unknown[]) => void).apply(logger, args)
  }
}

/** A request's logger that makes its pino child on first use (see the file comment). */
class LazyRequestLogger {
  readonly parent: Logger
  readonly #bindings: Bindings
  readonly #options: ChildLoggerOptions
  #child: FastifyBaseLogger | undefined

  constructor(parent: Logger, bindings: Bindings, options: ChildLoggerOptions) {
    this.parent = parent
    this.#bindings = bindings
    this.#options = options
  }

  /** The child logger, made on the first call. */
  logger(): FastifyBaseLogger {
    return (this.#child ??= this.parent.child(this.#bindings, this.#options))
  }

  get level(): string {
    return this.#child?.level ?? this.parent.level
  }

  set level(level: string) {
    this.logger().level = level
  }

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.logger().child(bindings, options)
  }

  silent(): void {}
}

for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const) {
  Object.defineProperty(LazyRequestLogger.prototype, level, { value: writer(level) })
}

/**
 * Fastify's `childLoggerFactory`: a lazy child (above) when the parent is a pino logger and the route sets no
 * level of its own (a route's `logLevel` gets its child at once, as Fastify would make it).
 * @example
 * Fastify({ loggerInstance: logger, childLoggerFactory: requestLogger })
 */
export const requestLogger: NonNullable<FastifyServerOptions['childLoggerFactory']> = function (
  logger,
  bindings,
  options,
) {
  const parent = logger as FastifyBaseLogger & Partial<Pick<Logger, 'isLevelEnabled'>>
  if (typeof parent.isLevelEnabled !== 'function' || options.level !== undefined) {
    return logger.child(bindings, options)
  }
  return new LazyRequestLogger(parent as Logger, bindings, options) as unknown as FastifyBaseLogger
}
