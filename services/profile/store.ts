/**
 * The profile store: one row per subject, created on the first `PUT /me`. Times are integer milliseconds.
 */
import type { Kysely, Migration } from 'kysely'
import { type PrecompiledQuery, precompile } from '../../lib/db.js'

export interface ProfileTables {
  profiles: {
    sub: string
    display_name: string
    updated_at: number
  }
}

export const profileMigrations: Record<string, Migration> = {
  '0001-profiles': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('profiles')
        .addColumn('sub', 'text', (c) => c.primaryKey())
        .addColumn('display_name', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute()
    },
  },
}

/** A stored profile as the API shows it. */
export interface StoredProfile {
  displayName: string | null
  /** ISO 8601. */
  updatedAt: string | null
}

const EMPTY_PROFILE: StoredProfile = { displayName: null, updatedAt: null }

type ProfileRow = Pick<ProfileTables['profiles'], 'display_name' | 'updated_at'>

/** Profiles by subject. */
export class ProfileStore {
  readonly #db: Kysely<ProfileTables>
  /**
   * `GET /me`'s query, built and compiled once for this database's dialect: only its one parameter (the
   * subject) changes per request, and Kysely building and compiling it cost more than running it.
   */
  readonly #selectProfile: PrecompiledQuery<ProfileRow, { sub: string }>

  constructor(db: Kysely<ProfileTables>) {
    this.#db = db
    this.#selectProfile = precompile({ sub: '\0sub' }, (p) =>
      db.selectFrom('profiles').select(['display_name', 'updated_at']).where('sub', '=', p.sub),
    )
  }

  /** The subject's profile; a subject that never stored one has an empty profile. */
  async get(sub: string): Promise<StoredProfile> {
    const { rows } = await this.#db.executeQuery(this.#selectProfile.bind({ sub }))
    const row = rows[0]
    return row ? toProfile(row) : EMPTY_PROFILE
  }

  /** Stores the subject's display name (creating the profile on first use). */
  async setDisplayName(sub: string, displayName: string, at: number): Promise<StoredProfile> {
    await this.#db
      .insertInto('profiles')
      .values({ sub, display_name: displayName, updated_at: at })
      .onConflict((oc) => oc.column('sub').doUpdateSet({ display_name: displayName, updated_at: at }))
      .execute()
    return toProfile({ display_name: displayName, updated_at: at })
  }
}

function toProfile(row: { display_name: string; updated_at: number }): StoredProfile {
  return { displayName: row.display_name, updatedAt: new Date(Number(row.updated_at)).toISOString() }
}
