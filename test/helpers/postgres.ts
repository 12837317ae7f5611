/**
 * A throwaway PostgreSQL database per test run: created on the server at KEYGATE_TEST_POSTGRES_URL
 * (default postgres://postgres@127.0.0.1:5432/test) under a unique name, dropped at teardown. When the
 * server is unreachable the tests that need it are skipped with a message — unless
 * KEYGATE_REQUIRE_POSTGRES=1 (CI), which makes that a failure.
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import type { Test } from 'tap'

export const POSTGRES_ADMIN_URL =
  process.env.KEYGATE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const CONNECT_TIMEOUT_MS = 3000

export interface TestDatabase {
  /** A `postgres://` URL of the new database, usable as DATABASE_URL. */
  url: string
  name: string
  /** Drops the database (closing whatever is still connected to it). */
  drop(): Promise<void>
}

async function admin<R>(fn: (client: pg.Client) => Promise<R>): Promise<R> {
  const client = new pg.Client({
    connectionString: POSTGRES_ADMIN_URL,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
  })
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

/** Creates a uniquely named database (`kg_test_<random>`). Throws when the server cannot be reached. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `kg_test_${randomBytes(6).toString('hex')}`
  await admin((c) => c.query(`create database ${name}`))
  const url = new URL(POSTGRES_ADMIN_URL)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    name,
    drop: () => admin((c) => c.query(`drop database if exists ${name} with (force)`)).then(() => undefined),
  }
}

let availability: Promise<string | false> | undefined

/**
 * Why PostgreSQL tests cannot run here, or false when they can (checked once per process). Throws when
 * the server is unreachable and KEYGATE_REQUIRE_POSTGRES=1.
 * @example
 * t.test('on PostgreSQL', { skip: await postgresUnavailable() }, async (t) => { … })
 */
export function postgresUnavailable(): Promise<string | false> {
  availability ??= admin((c) => c.query('select 1')).then(
    () => false as const,
    (err: Error) => {
      const why = `PostgreSQL unreachable at ${redacted(POSTGRES_ADMIN_URL)}: ${err.message}`
      if (process.env.KEYGATE_REQUIRE_POSTGRES === '1') throw new Error(`${why} (KEYGATE_REQUIRE_POSTGRES=1)`)
      return `skipping PostgreSQL tests: ${why}`
    },
  )
  return availability
}

/** A test database dropped at `t`'s teardown (after the test's own teardowns that close connections). */
export async function testDatabase(t: Test): Promise<TestDatabase> {
  const db = await createTestDatabase()
  t.teardown(() => db.drop())
  return db
}

function redacted(url: string): string {
  const u = new URL(url)
  if (u.password) u.password = '***'
  return u.toString()
}
