/**
 * Redis for tests, at KEYGATE_TEST_REDIS_URL (default redis://127.0.0.1:6379): each test gets a key prefix
 * of its own, whose keys are deleted at teardown. When the server is unreachable the tests that need it are
 * skipped with a message — unless KEYGATE_REQUIRE_REDIS=1 (CI), which makes that a failure.
 */
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import type { Test } from 'tap'

export const TEST_REDIS_URL = process.env.KEYGATE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

function client(): Redis {
  return new Redis(TEST_REDIS_URL, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 3000,
    retryStrategy: () => null,
  })
}

let availability: Promise<string | false> | undefined

/**
 * Why Redis tests cannot run here, or false when they can (checked once per process). Throws when the
 * server is unreachable and KEYGATE_REQUIRE_REDIS=1.
 * @example
 * t.test('on Redis', { skip: await redisUnavailable() }, async (t) => { … })
 */
export function redisUnavailable(): Promise<string | false> {
  availability ??= (async () => {
    const redis = client()
    redis.on('error', () => {})
    try {
      await redis.connect()
      await redis.ping()
      return false as const
    } catch (err) {
      const why = `Redis unreachable at ${TEST_REDIS_URL}: ${(err as Error).message}`
      if (process.env.KEYGATE_REQUIRE_REDIS === '1') throw new Error(`${why} (KEYGATE_REQUIRE_REDIS=1)`)
      return `skipping Redis tests: ${why}`
    } finally {
      redis.disconnect()
    }
  })()
  return availability
}

/** A key prefix of this test's own (`kgtest:<random>:`), its keys deleted at `t`'s teardown. */
export function testKeyPrefix(t: Test): string {
  const prefix = `kgtest:${randomBytes(6).toString('hex')}:`
  t.teardown(async () => {
    const redis = client()
    redis.on('error', () => {})
    await redis.connect()
    const keys = await redis.keys(`${prefix}*`)
    if (keys.length > 0) await redis.del(...keys)
    redis.disconnect()
  })
  return prefix
}
