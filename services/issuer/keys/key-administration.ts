/**
 * Key operations on demand, shared by the admin API and the command line: list, rotate, and revoke — which
 * also records a revocation event, so verifiers drop the key's tokens even before they refetch the JWKS.
 */
import type { RevocationEvents } from '../revocation-events.js'
import type { RevocationStore } from '../store/types.js'
import type { KeySetDocument, StoredKey } from './key-document.js'
import type { KeySet } from './key-set.js'

/** A key as listed by the admin API and the command line: metadata only, never key material. */
export interface KeyView {
  kid: string
  state: StoredKey['state']
  alg: 'RS256'
  created_at: string
  activated_at: string | null
  retired_at: string | null
  revoked_at: string | null
  remove_at: string | null
}

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString())

/** Describes a key without its private parts. */
export function keyView(key: StoredKey): KeyView {
  return {
    kid: key.kid,
    state: key.state,
    alg: 'RS256',
    created_at: new Date(key.createdAt).toISOString(),
    activated_at: iso(key.activatedAt),
    retired_at: iso(key.retiredAt),
    revoked_at: iso(key.revokedAt),
    remove_at: iso(key.removeAt),
  }
}

const STATE_ORDER = { next: 0, active: 1, retired: 2, revoked: 3 } as const

/** The keys of a set by state (next, active, retired, revoked), newest first within a state. */
export function listKeys(doc: KeySetDocument): KeyView[] {
  return [...doc.keys]
    .sort((a, b) => STATE_ORDER[a.state] - STATE_ORDER[b.state] || b.createdAt - a.createdAt)
    .map(keyView)
}

export interface KeyAdministrationOptions {
  keys: KeySet
  store: RevocationStore
  events: RevocationEvents
}

/** List, rotate and revoke signing keys. */
export class KeyAdministration {
  readonly #o: KeyAdministrationOptions

  constructor(options: KeyAdministrationOptions) {
    this.#o = options
  }

  /** The keys as this process last loaded them (see `listKeys`). */
  list(): KeyView[] {
    return listKeys(this.#o.keys.document)
  }

  /** Rotates now (refused with KG_KEY_ROTATION_TOO_EARLY while the next key is too young). */
  async rotate(): Promise<void> {
    await this.#o.keys.rotate()
  }

  /** Revokes a key and records the event. */
  async revoke(kid: string): Promise<StoredKey> {
    const revoked = await this.#o.keys.revoke(kid)
    const event = this.#o.events.key(revoked.revokedAt!, revoked.kid, revoked.removeAt!)
    await this.#o.store.recordRevocation(event)
    this.#o.events.recorded(event)
    return revoked
  }
}
