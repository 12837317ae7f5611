/**
 * Per-route rate limits on @fastify/rate-limit's store: a route's requests are counted per subject when the
 * caller is authenticated (wherever they come from), else per client address. Limits are checked after
 * authentication, which is what makes the subject known. With a Redis URL the counters live in Redis, so
 * that every gateway sharing it enforces one limit; without, each process counts in memory.
 */
import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Identity } from '@keygate/fastify-auth'
import { KeygateError } from '../lib/errors.js'
import { connectRedis } from '../lib/redis.js'
import type { GatewayRoute, RateLimit } from './route-table.js'

/** Counters remembered per distinct limit (route × caller keys); the least recently seen go first. */
export const RATE_LIMIT_KEYS = 100_000

const kRateLimitKey = Symbol('keygate.gateway.rateLimitKey')

declare module 'fastify' {
  interface FastifyRequest {
    [kRateLimitKey]: string
  }
}

type Limiter = (request: FastifyRequest) => Promise<{ isExceeded?: boolean; ttlInSeconds?: number }>

export interface RateLimitStoreOptions {
  /** Redis shared by the gateways (REDIS_URL); counters in memory without it. */
  redisUrl?: string | undefined
  /** Prefix of the keys in Redis (REDIS_KEY_PREFIX). */
  keyPrefix?: string
}

/** The limiters of a route table: one store per distinct limit, keys prefixed by the route. */
export class RouteRateLimits {
  readonly #byRoute = new Map<GatewayRoute, Limiter>()

  private constructor() {}

  /** Registers @fastify/rate-limit on `app` (no global limit) and makes the limiters of `routes`. */
  static async register(
    app: FastifyInstance,
    routes: readonly GatewayRoute[],
    store: RateLimitStoreOptions = {},
  ): Promise<RouteRateLimits> {
    const redis =
      store.redisUrl === undefined
        ? undefined
        : await connectRedis(app, store.redisUrl, {
            unreachable: 'rate limits are not counted until it answers',
            reachable: 'rate limits are counted again',
          })
    await app.register(rateLimit, {
      global: false,
      cache: RATE_LIMIT_KEYS,
      // Redis unreachable: requests pass uncounted (said in the log) rather than every gateway failing.
      ...(redis
        ? { redis, nameSpace: `${store.keyPrefix ?? 'keygate:'}rate-limit:`, skipOnError: true }
        : {}),
    })
    app.decorateRequest(kRateLimitKey, '')
    const limits = new RouteRateLimits()
    const byLimit = new Map<string, Limiter>()
    for (const route of routes) {
      const id = limitId(route.rateLimit)
      let limiter = byLimit.get(id)
      if (limiter === undefined) {
        limiter = app.createRateLimit({
          max: route.rateLimit.max,
          timeWindow: route.rateLimit.windowMs,
          keyGenerator: (request) => request[kRateLimitKey],
        }) as Limiter
        byLimit.set(id, limiter)
      }
      limits.#byRoute.set(route, limiter)
    }
    return limits
  }

  /** Counts the request against its route's limit; throws 429 with `Retry-After` once it is exceeded. */
  async check(request: FastifyRequest, route: GatewayRoute, identity: Identity | null): Promise<void> {
    request[kRateLimitKey] =
      identity === null
        ? `${route.prefix} ip ${clientAddress(request)}`
        : `${route.prefix} sub ${identity.issuer} ${identity.subject}`
    const result = await this.#byRoute.get(route)!(request)
    if (result.isExceeded) {
      throw new KeygateError('KG_RATE_LIMITED', {
        headers: { 'retry-after': String(result.ttlInSeconds ?? 1) },
      })
    }
  }
}

/** The client's address: the peer's, unless a trusted proxy says otherwise (request.ip parses the chain). */
export function clientAddress(request: FastifyRequest): string | undefined {
  return request.headers['x-forwarded-for'] === undefined ? request.socket.remoteAddress : request.ip
}

function limitId(limit: RateLimit): string {
  return `${limit.max}/${limit.windowMs}`
}
