/**
 * The files store: each file's bytes live in the database as a BLOB beside its metadata, keyed by owner
 * and name, so no path is ever built from a name and a file and its metadata change in one statement.
 * `id` is a random version, new at every upload: a download link names it, so a link never serves
 * content uploaded after it was issued. `used_links` remembers spent link ids until their links expire.
 */
import { randomUUID } from 'node:crypto'
import type { Kysely, Migration } from 'kysely'
import { dialectOf } from '../../lib/db.js'
import { writeTransaction } from '../../lib/db.js'

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

  constructor(db: Kysely<FileTables>) {
    this.#db = db
  }

  /** Stores (or replaces) a file; `created` tells whether the owner had none of that name. */
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
      const existing = await trx
        .selectFrom('files')
        .select('id')
        .where('owner', '=', owner)
        .where('name', '=', name)
        .executeTakeFirst()
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
