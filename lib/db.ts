/**
 * SQL access for every component through Kysely: an embedded SQLite file by default, PostgreSQL when the
 * URL says `postgres://`. Migrations are plain Kysely migrations, run at open; a component writes them once
 * and they run on both dialects (`dialectOf(db)` lets a migration pick a column type where the two differ).
 * On PostgreSQL a component may keep to a schema of its own (`schema`), so that several share one database:
 * Kysely records migrations in one table per schema, and a component finding another's records there
 * would refuse to start ("corrupted migrations").
 */
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import {
  CompiledQuery,
  Kysely,
  type Migration,
  Migrator,
  PostgresAdapter,
  PostgresDialect,
  type SqliteDatabase,
  SqliteDialect,
  sql,
} from 'kysely'
import { LRUCache } from 'lru-cache'
import pg from 'pg'

export type Dialect = 'sqlite' | 'postgres'

/**
 * Which dialect a database handle speaks. Asked of the handle's adapter, so it also works on the wrapped
 * handles Kysely's Migrator passes to migrations and on transactions.
 */
export function dialectOf(db: Kysely<unknown>): Dialect {
  return db.getExecutor().adapter instanceof PostgresAdapter ? 'postgres' : 'sqlite'
}

export interface OpenDatabaseOptions {
  /** A file path (or `sqlite:path`, or `:memory:`) for SQLite; `postgres://…` for PostgreSQL. */
  url: string
  /** Migrations by name; names sort in the order they run. */
  migrations: Record<string, Migration>
  /** Size of the PostgreSQL pool. */
  poolSize?: number
  /**
   * PostgreSQL only: the schema the component's tables (and its migration records) live in, created if
   * missing and made the connections' `search_path`, so that several components share one database without
   * seeing each other's tables or migrations. Unset: the database's default schema (`public`).
   */
  schema?: string
  /** The setting the URL came from, named in errors (`PROFILE_DATABASE_URL`). */
  setting?: string
}

/** A schema name keygate creates: lower-case letters, digits and `_`, so it never needs quoting. */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/
/** PostgreSQL's error code for a schema that already exists (two instances creating it at once). */
const DUPLICATE_SCHEMA = '42P06'
const UNIQUE_VIOLATION = '23505'

/** True when the URL names a PostgreSQL database. */
export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//.test(url)
}

/**
 * Opens (creating if needed) a database and brings its schema up to date.
 * @example
 * const db = await openDatabase<ProfileTables>({ url: 'data/profile.db', migrations })
 */
export async function openDatabase<T>(options: OpenDatabaseOptions): Promise<Kysely<T>> {
  let db: Kysely<T>
  const { schema } = options
  const postgres = isPostgresUrl(options.url)
  if (schema !== undefined && !SCHEMA_NAME.test(schema))
    throw new Error(`keygate: invalid schema name ${schema}`)
  if (postgres) {
    const pool = new pg.Pool({
      connectionString: options.url,
      max: options.poolSize ?? 10,
      ...(schema === undefined ? {} : { options: `-c search_path=${schema}` }),
      // int8 (counts, cursors, ms timestamps) as numbers: every value we store fits in 2^53.
      types: { getTypeParser: (oid, format) => (oid === 20 ? Number : pg.types.getTypeParser(oid, format)) },
    })
    pool.on('error', () => {
      // An idle client lost its connection; the pool replaces it. Queries in flight report their own errors.
    })
    db = new Kysely<T>({ dialect: new PostgresDialect({ pool }) })
  } else {
    const file = options.url.replace(/^sqlite:/, '')
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true })
    const sqlite = new Database(file)
    // WAL survives a killed process with every committed transaction; NORMAL syncs at checkpoints.
    sqlite.pragma('journal_mode = WAL')
    sqlite.pragma('synchronous = NORMAL')
    sqlite.pragma('busy_timeout = 5000')
    sqlite.pragma('foreign_keys = ON')
    db = new Kysely<T>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) })
  }
  const setting = options.setting ? `${options.setting}: ` : ''
  if (postgres && schema !== undefined) {
    try {
      await sql`create schema if not exists ${sql.id(schema)}`.execute(db)
    } catch (err) {
      const code = (err as { code?: string }).code
      if (code !== DUPLICATE_SCHEMA && code !== UNIQUE_VIOLATION) {
        await db.destroy()
        throw new Error(`keygate: ${setting}cannot open the database: ${(err as Error).message}`)
      }
    }
  }
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => options.migrations },
    ...(postgres && schema !== undefined ? { migrationTableSchema: schema } : {}),
  })
  const { error, results } = await migrator.migrateToLatest()
  if (error) {
    await db.destroy()
    const failed = results?.find((r) => r.status === 'Error')?.migrationName
    throw new Error(
      `keygate: ${setting}database migration ${failed ? `${failed} ` : ''}failed: ${(error as Error).message}`,
    )
  }
  return db
}

/** Prepared statements kept per SQLite connection (queries are a fixed set of shapes). */
const STATEMENT_CACHE_SIZE = 256

/**
 * Kysely prepares every query afresh; preparing costs more than running most of ours. The same SQL text
 * gets the same prepared statement back (SQLite re-prepares it itself if the schema changes). A statement
 * is never busy when it is handed out again: no keygate query is streamed (`.stream()` would iterate one).
 */
function withStatementCache(sqlite: Database.Database): SqliteDatabase {
  const statements = new LRUCache<string, Database.Statement>({ max: STATEMENT_CACHE_SIZE })
  return {
    close: () => sqlite.close(),
    prepare(text: string) {
      let statement = statements.get(text)
      if (statement === undefined) {
        statement = sqlite.prepare(text)
        statements.set(text, statement)
      }
      return statement
    },
  }
}

const BEGIN_IMMEDIATE = CompiledQuery.raw('begin immediate')
const COMMIT = CompiledQuery.raw('commit')
const ROLLBACK = CompiledQuery.raw('rollback')

/**
 * Runs `fn` in a write transaction. On SQLite it starts with `BEGIN IMMEDIATE`, taking the write lock up
 * front, so two processes never deadlock upgrading a read lock; on PostgreSQL it is an ordinary transaction.
 */
export async function writeTransaction<T, R>(db: Kysely<T>, fn: (trx: Kysely<T>) => Promise<R>): Promise<R> {
  if (dialectOf(db as Kysely<unknown>) === 'postgres') return db.transaction().execute(fn)
  return db.connection().execute(async (conn) => {
    await conn.executeQuery(BEGIN_IMMEDIATE)
    try {
      const result = await fn(conn)
      await conn.executeQuery(COMMIT)
      return result
    } catch (err) {
      await conn.executeQuery(ROLLBACK).catch(() => {})
      throw err
    }
  })
}

/** A query compiled once; `bind` gives it with this execution's values, for `db.executeQuery(…)`. */
export interface PrecompiledQuery<Row, P> {
  bind(values: P): CompiledQuery<Row>
}

/**
 * Builds and compiles a query once, for a hot path where Kysely's building and compiling cost more than
 * running the query. `build` is called once with `placeholders`, values found nowhere else in the query
 * and each one distinct (`-1`, `-2`, `'\0token'` …): where each lands among the compiled parameters is
 * where `bind` puts that value, whatever order the dialect's compiler chose. Throws at once when a
 * placeholder is missing or ambiguous.
 * @example
 * const byId = precompile({ id: '\0id' }, (p) => db.selectFrom('users').selectAll().where('id', '=', p.id))
 * const { rows } = await db.executeQuery(byId.bind({ id }))
 */
export function precompile<Row, P extends Record<string, unknown>>(
  placeholders: P,
  build: (placeholders: P) => { compile(): CompiledQuery<Row> },
): PrecompiledQuery<Row, P> {
  const compiled = build(placeholders).compile()
  const names = Object.keys(placeholders) as Array<keyof P>
  const slots = compiled.parameters.map((value) => {
    const matching = names.filter((name) => Object.is(placeholders[name], value))
    return matching.length === 1 ? matching[0] : undefined
  })
  for (const name of names) {
    if (slots.filter((slot) => slot === name).length !== 1) {
      throw new Error(
        `keygate: precompiled query: placeholder ${String(name)} is not one parameter of ${compiled.sql}`,
      )
    }
  }
  return {
    bind(values: P) {
      return {
        ...compiled,
        parameters: slots.map((slot, i) => (slot === undefined ? compiled.parameters[i] : values[slot])),
      }
    },
  }
}
