/**
 * How a verifier reports a neighbour it cannot reach (an issuer's JWKS, its revocation feed). Until the
 * neighbour has answered once, a failure is the ordinary start-up order — the issuer is still booting, or
 * comes up after its verifiers — so it is said once, at info, and the retries after it only at debug. Once
 * the neighbour has answered, losing it is news: a warning each time, as before.
 */
import type { FastifyBaseLogger } from 'fastify'

export class ReachabilityLog {
  readonly #log: FastifyBaseLogger
  readonly #neighbour: string
  readonly #fields: Record<string, unknown>
  #reached = false
  #waitingSaid = false
  /** A failure was logged and no answer has come since. */
  #failing = false

  /**
   * @param neighbour what is waited for, as the log says it (`the issuer's JWKS`)
   * @param fields logged with every line (`{ issuer }`)
   * @example
   * const jwks = new ReachabilityLog(app.log, "the issuer's JWKS", { issuer })
   * jwks.failed('connect ECONNREFUSED 127.0.0.1:4000', 'JWKS fetch failed')
   */
  constructor(log: FastifyBaseLogger, neighbour: string, fields: Record<string, unknown>) {
    this.#log = log
    this.#neighbour = neighbour
    this.#fields = fields
  }

  /** The neighbour answered: said at info only after a failure was said. */
  reached(): void {
    if (this.#failing) this.#log.info(this.#fields, `${this.#neighbour} reached`)
    this.#failing = false
    this.#reached = true
  }

  /** The neighbour could not be reached; `message` is the warning once it had been reached before. */
  failed(reason: string | undefined, message: string): void {
    this.#failing = true
    if (this.#reached) {
      this.#log.warn({ ...this.#fields, reason }, message)
    } else if (!this.#waitingSaid) {
      this.#waitingSaid = true
      this.#log.info(
        { ...this.#fields, reason },
        `waiting for ${this.#neighbour} (retrying until it answers)`,
      )
    } else {
      this.#log.debug({ ...this.#fields, reason }, message)
    }
  }
}
