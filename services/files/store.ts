/**
 * The files store: each file's bytes live in the database as a BLOB beside its metadata, keyed by owner
 * and name, so no path is ever built from a name and a file and its metadata change in one statement.
 * `id` is a random version, new at every upload: a download link names it, so a link never serves
 * content uploaded after it was issued. `used_links` remembers spent link ids until their links expire.
 * Each owner's total bytes and number of files are bounded by a quota, checked inside the write.
 */
import { randomUUID } from 'node:crypto'
import { type Kysely, type Migration, sql } from 'kysely'
import { dialectOf, writeTransaction } from '../../lib/db.js'

export interface FileTables {
  files: {
    owner: string
    name: string
    id: string
    content_type: string
    size: number
    content: Buffer
    updated_at: number
  }
  used_links: {
    jti: string
    expires_at: number
  }
}

export const fileMigrations: Record<string, Migration> = {
  '0001-files-used-links': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('files')
        .addColumn('owner', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('content_type', 'text', (c) => c.notNull())
        .addColumn('size', 'bigint', (c) => c.notNull())
        .addColumn('content', dialectOf(db) === 'postgres' ? 'bytea' : 'blob', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('files_pk', ['owner', 'name'])
        .execute()
      await db.schema
        .createTable('used_links')
        .addColumn('jti', 'text', (c) => c.primaryKey())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .execute()
      await db.schema.createIndex('used_links_expires_at').on('used_links').column('expires_at').execute()
    },
  },
}

/** A stored file as the API lists it. */
export interface FileInfo {
  name: string
  size: number
  contentType: string
  /** ISO 8601. */
  updatedAt: string
}

/** A file's current version. */
export interface FileVersion extends FileInfo {
  id: string
}

export interface FileContent {
  contentType: string
  content: Buffer
}

/** What one owner may store: total bytes (FILES_QUOTA_BYTES) and number of files (FILES_QUOTA_COUNT). */
export interface FileQuota {
  bytes: number
  count: number
}

/** An upload refused because it would take its owner past the quota; nothing was stored. */
export class QuotaExceededError extends Error {
  override name = 'QuotaExceededError'
  /** Which bound: the total bytes, or the number of files. */
  readonly quota: keyof FileQuota
  readonly limit: number
  /** The owner's usage of that bound before the upload. */
  readonly used: number

  constructor(quota: keyof FileQuota, limit: number, used: number) {
    super(`keygate files: the upload would exceed the ${quota} quota (${used} of ${limit} used)`)
    this.quota = quota
    this.limit = limit
    this.used = used
  }
}

const INFO_COLUMNS = ['name', 'id', 'size', 'content_type', 'updated_at'] as const

function toVersion(row: Pick<FileTables['files'], (typeof INFO_COLUMNS)[number]>): FileVersion {
  return {
    name: row.name,
    id: row.id,
    size: Number(row.size),
    contentType: row.content_type,
    updatedAt: new Date(Number(row.updated_at)).toISOString(),
  }
}

/** Files, always looked up within one owner's. */
export class FileStore {
  readonly #db: Kysely<FileTables>
  readonly #quota: FileQuota

  constructor(db: Kysely<FileTables>, quota: FileQuota) {
    this.#db = db
    this.#quota = quota
  }

  /**
   * Stores (or replaces) a file; `created` tells whether the owner had none of that name. The quota is
   * checked in the write's transaction, with the owner's other writes held off (SQLite's write lock, a
   * PostgreSQL advisory lock per owner), so concurrent uploads cannot together pass it. An upload that
   * does not grow the owner's usage (a replacement no larger than what it replaces) is never refused,
   * even by a quota lowered below what the owner already stores.
   * @throws QuotaExceededError when the upload would take the owner past a bound
   */
  async put(
    owner: string,
    name: string,
    contentType: string,
    content: Buffer,
    at: number,
  ): Promise<{ created: boolean; file: FileVersion }> {
    const row = {
      owner,
      name,
      id: randomUUID(),
      content_type: contentType,
      size: content.length,
      content,
      updated_at: at,
    }
    const created = await writeTransaction(this.#db, async (trx) => {
      if (dialectOf(trx as Kysely<unknown>) === 'postgres') {
        // Held until the transaction ends; a row lock could not cover files the owner does not have yet.
        await sql`select pg_advisory_xact_lock(hashtextextended(${`keygate-files:${owner}`}, 0))`.execute(trx)
      }
      const existing = await trx
        .selectFrom('files')
        .select('size')
        .where('owner', '=', owner)
        .where('name', '=', name)
        .executeTakeFirst()
      const usage = await trx
        .selectFrom('files')
        .select((eb) => [eb.fn.countAll<number>().as('count'), eb.fn.sum<number>('size').as('bytes')])
        .where('owner', '=', owner)
        .executeTakeFirstOrThrow()
      const used = { bytes: Number(usage.bytes ?? 0), count: Number(usage.count) }
      const after = {
        bytes: used.bytes - Number(existing?.size ?? 0) + content.length,
        count: used.count + (existing === undefined ? 1 : 0),
      }
      for (const bound of ['count', 'bytes'] as const) {
        if (after[bound] > this.#quota[bound] && after[bound] > used[bound]) {
          throw new QuotaExceededError(bound, this.#quota[bound], used[bound])
        }
      }
      await trx
        .insertInto('files')
        .values(row)
        .onConflict((oc) =>
          oc.columns(['owner', 'name']).doUpdateSet({
            id: row.id,
            content_type: row.content_type,
            size: row.size,
            content: row.content,
            updated_at: row.updated_at,
          }),
        )
        .execute()
      return existing === undefined
    })
    return { created, file: toVersion(row) }
  }

  /** Deletes one of the owner's files; false when the owner has none of that name. */
  async remove(owner: string, name: string): Promise<boolean> {
    const result = await this.#db
      .deleteFrom('files')
      .where('owner', '=', owner)
      .where('name', '=', name)
      .executeTakeFirst()
    return Number(result.numDeletedRows) > 0
  }

  /** The owner's files by name, without their content. */
  async list(owner: string): Promise<FileInfo[]> {
    const rows = await this.#db
      .selectFrom('files')
      .select(INFO_COLUMNS)
      .where('owner', '=', owner)
      .orderBy('name')
      .execute()
    return rows.map((r) => {
      const { id: _id, ...info } = toVersion(r)
      return info
    })
  }

  /** The current version of one of the owner's files. */
  async find(owner: string, name: string): Promise<FileVersion | undefined> {
    const row = await this.#db
      .selectFrom('files')
      .select(INFO_COLUMNS)
      .where('owner', '=', owner)
      .where('name', '=', name)
      .executeTakeFirst()
    return row && toVersion(row)
  }

  /** The bytes of one version of a file, if it is still the current one. */
  async content(owner: string, name: string, id: string): Promise<FileContent | undefined> {
    const row = await this.#db
      .selectFrom('files')
      .select(['content_type', 'content'])
      .where('owner', '=', owner)
      .where('name', '=', name)
      .where('id', '=', id)
      .executeTakeFirst()
    return row && { contentType: row.content_type, content: Buffer.from(row.content) }
  }

  /**
   * Spends a link id: true the first time, false ever after. One conditional insert, so of two
   * concurrent uses (in one process or several sharing the store) exactly one wins. Ids of links that
   * expired before `forgetBefore` are forgotten: their links are refused for expiry anyway.
   */
  async spendLink(jti: string, expiresAt: number, forgetBefore: number): Promise<boolean> {
    await this.#db.deleteFrom('used_links').where('expires_at', '<', forgetBefore).execute()
    const result = await this.#db
      .insertInto('used_links')
      .values({ jti, expires_at: expiresAt })
      .onConflict((oc) => oc.column('jti').doNothing())
      .executeTakeFirst()
    return Number(result.numInsertedOrUpdatedRows ?? 0) === 1
  }
}
