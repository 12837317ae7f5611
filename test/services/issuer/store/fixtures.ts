/**
 * Shared setup for the store's tests: records to store, and a runner that puts a test body through the
 * same contract on SQLite and on PostgreSQL (a throwaway database per run; skipped with a message when
 * PostgreSQL is unreachable, unless KEYGATE_REQUIRE_POSTGRES=1).
 */
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { openIssuerStore } from '../../../../services/issuer/store/issuer-store.js'
import type { RevocationEvent } from '../../../../lib/auth/feed-protocol.js'
import type { IssuerStore, SealedKeyRecord, UserRecord } from '../../../../services/issuer/store/types.js'
import { postgresUnavailable, testDatabase } from '../../../helpers/postgres.js'
import { tempDir } from '../fixtures.js'

export const T0 = 1_800_000_000_000

export function user(email: string, roles = ['user']): UserRecord {
  return {
    id: randomUUID(),
    email,
    passwordHash: '$argon2id$fake',
    roles,
    createdAt: T0,
    updatedAt: T0,
    disabledAt: null,
  }
}

/** A session revocation recorded at T0. */
export function event(overrides: { sessionId?: string; expiresAt?: number } = {}): RevocationEvent {
  return { type: 'session', sessionId: 's', createdAt: T0, expiresAt: T0 + 1000, ...overrides }
}

/** A revocation of a user's tokens issued until T0. */
export function userEvent(subject: string): RevocationEvent {
  return { type: 'user', subject, issuedBefore: T0, createdAt: T0, expiresAt: T0 + 1000 }
}

export async function newSession(store: IssuerStore, userId: string, tokenHash: string, at = T0) {
  const id = randomUUID()
  await store.createSession(
    {
      id,
      userId,
      clientId: 'web',
      csrfHash: 'csrf',
      createdAt: at,
      idleExpiresAt: at + 10_000,
      absoluteExpiresAt: at + 50_000,
    },
    tokenHash,
  )
  return id
}

export function sealedKey(kid: string, overrides: Partial<SealedKeyRecord> = {}): SealedKeyRecord {
  return {
    kid,
    state: 'next',
    createdAt: T0,
    activatedAt: null,
    retiredAt: null,
    revokedAt: null,
    removeAt: null,
    sealedPrivateKey: `sealed-${kid}`,
    ...overrides,
  }
}

/**
 * A store contract: `store` is open for the whole run; `open` opens another handle on the same database
 * each call (a second handle stands for a second process); `shared` says whether handles coordinate like
 * several instances (PostgreSQL) or not (SQLite).
 */
export type StoreContract = (
  t: Test,
  context: { store: IssuerStore; open: () => Promise<IssuerStore>; shared: boolean },
) => Promise<void>

/** Runs `contract` on SQLite (a file in a nested directory that does not exist yet) and on PostgreSQL. */
export async function onEachDialect(contract: StoreContract): Promise<void> {
  const run = async (t: Test, open: () => Promise<IssuerStore>, shared: boolean) => {
    const store = await open()
    t.teardown(() => store.close())
    await contract(t, { store, open, shared })
  }
  t.test('on SQLite', async (t) => {
    const dir = tempDir(t)
    await run(t, () => openIssuerStore(join(dir, 'nested', 'issuer.db')), false)
  })
  t.test('on PostgreSQL', { skip: await postgresUnavailable() }, async (t) => {
    const db = await testDatabase(t)
    await run(t, () => openIssuerStore(db.url), true)
  })
}
