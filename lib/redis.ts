/**
 * The Redis connection of a component that shares counters with its peers (REDIS_URL): the gateways' rate
 * limits, the issuers' login throttles. One way to connect for both, so they behave alike when Redis is
 * slow or gone: commands fail at once instead of queueing (after REDIS_COMMAND_TIMEOUT_MS when Redis is
 * connected but stalls), losing Redis is one warning, finding it again one info line, and the connection
 * closes with the component.
 */
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'

/** Time to connect to Redis, in milliseconds; a command fails at once while it is unreachable. */
export const REDIS_CONNECT_TIMEOUT_MS = 5000
/**
 * Time a command may take, in milliseconds (2 s): a Redis that accepts commands and never answers fails them
 * like one that is gone, rather than holding every request that counts.
 */
export const REDIS_COMMAND_TIMEOUT_MS = 2000

/**
 * A Redis client closed with `app`. `unreachable` finishes the warning logged when Redis is lost ("Redis
 * unreachable: <unreachable>"), saying what the component does without it; `reachable` the info line when
 * it answers again. Resolves once the first connection succeeded or failed (the client keeps retrying).
 * @example
 * const redis = await connectRedis(app, url, {
 *   unreachable: 'rate limits are not counted until it answers',
 *   reachable: 'rate limits are counted again',
 * })
 */
export async function connectRedis(
  app: FastifyInstance,
  url: string,
  messages: { unreachable: string; reachable: string },
): Promise<Redis> {
  const redis = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: REDIS_CONNECT_TIMEOUT_MS,
    commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
  })
  let reachable = true
  redis.on('error', (err: Error) => {
    if (!reachable) return
    reachable = false
    app.log.warn({ reason: err.message }, `Redis unreachable: ${messages.unreachable}`)
  })
  redis.on('ready', () => {
    if (!reachable) app.log.info(`Redis reached: ${messages.reachable}`)
    reachable = true
  })
  app.addHook('onClose', async () => {
    redis.disconnect()
  })
  // A first connection that fails is reported by the error handler above; the client keeps retrying.
  await redis.connect().catch(() => {})
  return redis
}
