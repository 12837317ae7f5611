/**
 * Orders' client of profile: `GET /me` on the caller's behalf, over a keep-alive undici pool. With a
 * client of its own (ORDERS_CLIENT_ID / ORDERS_CLIENT_SECRET) orders exchanges what it holds for the caller
 * at the issuer (RFC 8693, see token-exchange.ts) — the gateway's assertion addressed to orders, or the
 * caller's access token when one reached orders directly — for a token addressed to profile alone, whose
 * `act` names orders; without one it relays the caller's own token (lib/identity/relay.ts), the documented
 * fallback. Never the assertion itself, which is bound to orders, and never plain identity headers. Every failure
 * is a 502 `KG_PROFILE_UNAVAILABLE` whose `reason` says which: nothing to relay, the exchange refused or
 * failed, unreachable, timeout, refused, or a bad answer.
 */
import type { FastifyBaseLogger } from 'fastify'
import { Pool } from 'undici'
import { type Identity, readCappedBody } from '@keygate/fastify-auth'
import { KeygateError } from '../../lib/errors.js'
import { canRelay, REQUEST_ID_HEADER, relayHeaders } from '../../lib/identity/relay.js'
import { ExchangeFailure, type TokenExchange } from './token-exchange.js'

/** Connections kept to profile. */
export const DEFAULT_PROFILE_CONNECTIONS = 16
/** Largest answer read from profile, in bytes. */
export const MAX_PROFILE_ANSWER_BYTES = 64 * 1024
/** Time limit of one readiness probe of profile, in milliseconds. */
export const PROFILE_PROBE_TIMEOUT_MS = 1_000

export type ProfileFailure =
  | 'no_relayable_identity'
  | 'exchange_refused'
  | 'exchange_failed'
  | 'unreachable'
  | 'timeout'
  | 'refused'
  | 'bad_answer'

export interface ProfileClientOptions {
  /** profile's base URL (PROFILE_URL). */
  url: string
  /** Time limit of one call, in milliseconds. */
  timeoutMs: number
  connections?: number
  /** Exchanges the caller's token for one addressed to profile; without it the caller's token is relayed. */
  exchange?: TokenExchange
}

function unavailable(reason: ProfileFailure, cause?: unknown): KeygateError {
  return new KeygateError('KG_PROFILE_UNAVAILABLE', { details: { reason }, cause })
}

function isTimeout(err: unknown): boolean {
  const e = err as { name?: string; code?: string }
  return e.name === 'TimeoutError' || (typeof e.code === 'string' && e.code.includes('TIMEOUT'))
}

export class ProfileClient {
  readonly #pool: Pool
  readonly #timeoutMs: number
  readonly #exchange: TokenExchange | undefined
  #reached = false

  constructor(options: ProfileClientOptions) {
    this.#timeoutMs = options.timeoutMs
    this.#exchange = options.exchange
    this.#pool = new Pool(options.url, {
      connections: options.connections ?? DEFAULT_PROFILE_CONNECTIONS,
      connectTimeout: options.timeoutMs,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
    })
  }

  /**
   * The caller's display name as profile stores it (null when none is set), asked on the caller's behalf.
   * @throws KeygateError KG_PROFILE_UNAVAILABLE (502) with `reason`
   * @example
   * const name = await profile.displayNameOf(request.identity, { requestId: request.id, log: request.log })
   */
  async displayNameOf(
    identity: Identity,
    context: { requestId: string; log: FastifyBaseLogger; assertion?: string },
  ): Promise<string | null> {
    const fail = (reason: ProfileFailure, cause?: unknown, status?: number) => {
      context.log.warn({ reason, status, sub: identity.subject }, 'profile call failed')
      return unavailable(reason, cause)
    }
    let headers: Record<string, string>
    if (!this.#exchange) {
      const relayed = relayHeaders(identity, context.requestId)
      // Called with weaker identity, profile would (rightly) refuse; do not call at all.
      if (!relayed) throw fail('no_relayable_identity')
      headers = { ...relayed }
    } else {
      const subject = canRelay(identity)
        ? { token: identity.token!, type: 'access_token' as const }
        : context.assertion === undefined
          ? undefined
          : { token: context.assertion, type: 'assertion' as const }
      if (!subject) throw fail('no_relayable_identity')
      try {
        const token = await this.#exchange.tokenFor(subject.token, subject.type)
        headers = { authorization: `Bearer ${token}`, [REQUEST_ID_HEADER]: context.requestId }
      } catch (err) {
        if (err instanceof ExchangeFailure) throw fail(err.reason, err, err.status)
        throw fail('exchange_failed', err)
      }
    }

    let answer: { status: number; text: string | undefined }
    try {
      const res = await this.#pool.request({
        method: 'GET',
        path: '/me',
        headers: { ...headers, accept: 'application/json' },
        signal: AbortSignal.timeout(this.#timeoutMs),
      })
      answer = {
        status: res.statusCode,
        text: (await readCappedBody(res.body, MAX_PROFILE_ANSWER_BYTES))?.toString('utf8'),
      }
    } catch (err) {
      throw fail(isTimeout(err) ? 'timeout' : 'unreachable', err)
    }
    this.#reached = true
    if (answer.status !== 200) throw fail('refused', undefined, answer.status)
    const displayName =
      answer.text === undefined ? undefined : displayNameFrom(answer.text, identity.principal)
    if (displayName === undefined) throw fail('bad_answer', undefined, answer.status)
    return displayName
  }

  /** True once profile has answered at all (orders reports not-ready until it has, then stops asking). */
  async reachable(): Promise<boolean> {
    if (this.#reached) return true
    try {
      const res = await this.#pool.request({
        method: 'GET',
        path: '/healthz',
        signal: AbortSignal.timeout(Math.min(this.#timeoutMs, PROFILE_PROBE_TIMEOUT_MS)),
      })
      await res.body.dump()
      this.#reached = res.statusCode === 200
    } catch {
      // Not up yet: the next readiness probe asks again.
    }
    return this.#reached
  }

  async close(): Promise<void> {
    await this.#pool.close()
  }
}

/** The display name in profile's `GET /me` answer, provided it speaks of `principal`; else undefined. */
function displayNameFrom(text: string, principal: string): string | null | undefined {
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    return undefined
  }
  const me = body as { principal?: unknown; profile?: { displayName?: unknown } } | null
  if (typeof me !== 'object' || me === null || me.principal !== principal) return undefined
  const name = me.profile?.displayName
  return typeof name === 'string' || name === null ? name : undefined
}
