/**
 * Orders' token exchange (RFC 8693) at the issuer's token endpoint: the gateway's assertion addressed to
 * orders (`subject_token_type` jwt; the issuer accepts it from orders' client alone) or, for a caller that
 * reached orders directly with a token, that access token as `subject_token`; orders authenticated as its
 * own client (`client_secret_basic`), `audience` = profile's.
 * The answer is a token for profile alone with `sub` = the user and `act.sub` = orders' client. Exchanged
 * tokens are kept per subject token (by its SHA-256, never the token itself) until shortly before they
 * expire, in a bounded cache that drops the oldest entry when full.
 */
import { createHash } from 'node:crypto'
import { type OAuthAnswer, postOAuthForm } from '../../lib/oauth-client.js'

/** The issuer's token endpoint, below ISSUER_URL. */
export const TOKEN_ENDPOINT_PATH = '/oauth/token'
/** Exchanged tokens kept at most. */
export const DEFAULT_EXCHANGE_CACHE_SIZE = 1_000
/** An exchanged token is not used in its last this many milliseconds (or last half of its life, if shorter). */
export const EXCHANGE_EXPIRY_MARGIN_MS = 10_000
/** Largest token endpoint answer read, in bytes. */
export const MAX_EXCHANGE_ANSWER_BYTES = 16 * 1024

const TOKEN_TYPE_ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token'
const TOKEN_TYPE_JWT = 'urn:ietf:params:oauth:token-type:jwt'

/** What orders holds for the caller: their access token, or the gateway's assertion to orders. */
export type SubjectKind = 'access_token' | 'assertion'
const GRANT_TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'

/** Why an exchange failed: the issuer refused it (4xx), or it could not be asked or answered nonsense. */
export class ExchangeFailure extends Error {
  constructor(
    readonly reason: 'exchange_refused' | 'exchange_failed',
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(`token exchange ${reason === 'exchange_refused' ? 'refused' : 'failed'}`, options)
  }
}

export interface TokenExchangeOptions {
  /** ISSUER_URL: the token endpoint is `${issuerUrl}/oauth/token`. */
  issuerUrl: string
  clientId: string
  clientSecret: string
  /** The audience asked for (PROFILE_AUDIENCE). */
  audience: string
  timeoutMs: number
  now: () => number
  cacheSize?: number
}

interface Cached {
  token: string
  /** When to stop using it, in epoch milliseconds. */
  useUntil: number
}

export class TokenExchange {
  readonly #o: TokenExchangeOptions
  readonly #cache = new Map<string, Cached>()
  readonly #maxSize: number

  constructor(options: TokenExchangeOptions) {
    this.#o = options
    this.#maxSize = options.cacheSize ?? DEFAULT_EXCHANGE_CACHE_SIZE
  }

  /**
   * A token for the configured audience on behalf of the subject token's user, from the cache or the issuer.
   * @throws ExchangeFailure
   * @example
   * const token = await exchange.tokenFor(request.identity.token!, 'access_token')
   */
  async tokenFor(subjectToken: string, kind: SubjectKind = 'access_token'): Promise<string> {
    const key = createHash('sha256').update(subjectToken).digest('base64url')
    const now = this.#o.now()
    const cached = this.#cache.get(key)
    if (cached && now < cached.useUntil) return cached.token
    this.#cache.delete(key)

    const { token, expiresIn } = await this.#ask(subjectToken, kind)
    const lifeMs = expiresIn * 1000
    const useUntil = now + lifeMs - Math.min(EXCHANGE_EXPIRY_MARGIN_MS, lifeMs / 2)
    if (this.#cache.size >= this.#maxSize) {
      for (const [k, v] of this.#cache) if (v.useUntil <= now) this.#cache.delete(k)
      // Still full: drop the oldest.
      if (this.#cache.size >= this.#maxSize) this.#cache.delete(this.#cache.keys().next().value!)
    }
    this.#cache.set(key, { token, useUntil })
    return token
  }

  /** Exchanged tokens currently kept. */
  get size(): number {
    return this.#cache.size
  }

  async #ask(subjectToken: string, kind: SubjectKind): Promise<{ token: string; expiresIn: number }> {
    let answer: OAuthAnswer
    try {
      answer = await postOAuthForm(
        `${this.#o.issuerUrl.replace(/\/+$/, '')}${TOKEN_ENDPOINT_PATH}`,
        this.#o,
        {
          grant_type: GRANT_TOKEN_EXCHANGE,
          subject_token: subjectToken,
          subject_token_type: kind === 'assertion' ? TOKEN_TYPE_JWT : TOKEN_TYPE_ACCESS_TOKEN,
          requested_token_type: TOKEN_TYPE_ACCESS_TOKEN,
          audience: this.#o.audience,
        },
        { timeoutMs: this.#o.timeoutMs, maxBytes: MAX_EXCHANGE_ANSWER_BYTES },
      )
    } catch (err) {
      throw new ExchangeFailure('exchange_failed', undefined, { cause: err })
    }
    const { status, json } = answer
    if (status >= 400 && status < 500) throw new ExchangeFailure('exchange_refused', status)
    const token = json?.access_token
    const expiresIn = json?.expires_in
    if (
      status !== 200 ||
      typeof token !== 'string' ||
      token === '' ||
      typeof expiresIn !== 'number' ||
      !(expiresIn > 0)
    ) {
      throw new ExchangeFailure('exchange_failed', status)
    }
    return { token, expiresIn }
  }
}
