/**
 * How keys move between states. Every function takes a document and the current time and returns a new
 * document, so the same rules run in the issuer's scheduler, its admin API and the command line — always
 * on the freshest copy of the file, read under its lock.
 */
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose'
import { KeygateError } from '../../../lib/errors.js'
import { type KeySetDocument, keyIn, SIGNING_ALGORITHM, type StoredKey } from './key-document.js'

/** The settings the key schedule runs on (milliseconds); the issuer's settings extend them. */
export interface KeySchedule {
  /** How long the next key is published before it may sign (KEY_PUBLISH_LEAD). */
  keyPublishLeadMs: number
  /** How often the active key is replaced (KEY_ROTATION_INTERVAL). */
  keyRotationIntervalMs: number
  /** How long a retired key stays published: every token it signed has expired and left every JWKS cache. */
  retiredKeyKeepMs: number
  /** How long a revoked key stays listed (not published): until every token it signed has expired. */
  revokedKeyKeepMs: number
  /** RSA modulus length of new keys (KEY_RSA_BITS). */
  rsaBits: number
}

/** Generates an RSA signing key, published (as `next`) from `now`. */
export async function generateSigningKey(bits: number, now: number): Promise<StoredKey> {
  const { privateKey } = await generateKeyPair(SIGNING_ALGORITHM, { modulusLength: bits, extractable: true })
  const privateJwk = await exportJWK(privateKey)
  const kid = await calculateJwkThumbprint({ kty: 'RSA', n: privateJwk.n!, e: privateJwk.e! }, 'sha256')
  return { kid, state: 'next', createdAt: now, privateJwk }
}

/**
 * Brings a set to its steady state: one `active` and one `next`. On first start both are generated; the
 * first active key signs at once, since no verifier can hold an older copy of an empty set.
 */
export async function ensureKeys(doc: KeySetDocument, now: number, schedule: KeySchedule): Promise<KeySetDocument> {
  if (keyIn(doc, 'active') && keyIn(doc, 'next')) return doc
  const keys = [...doc.keys]
  if (!keyIn(doc, 'active')) {
    const next = keyIn(doc, 'next')
    const promoted = next ?? (await generateSigningKey(schedule.rsaBits, now))
    if (next) keys.splice(keys.indexOf(next), 1)
    keys.push({ ...promoted, state: 'active', activatedAt: now })
  }
  if (!keys.some((k) => k.state === 'next')) keys.push(await generateSigningKey(schedule.rsaBits, now))
  return { ...doc, keys }
}

/**
 * When the `next` key will have been published long enough to sign. A next key published no later than
 * the active key needs no lead: every verifier that holds the active key fetched the set after both were
 * published (the pair generated on first start is such a pair), so it can rotate at once.
 */
export function nextKeyReadyAt(doc: KeySetDocument, schedule: KeySchedule): number | undefined {
  const next = keyIn(doc, 'next')
  const active = keyIn(doc, 'active')
  if (!next) return undefined
  if (active && next.createdAt <= active.createdAt) return next.createdAt
  return next.createdAt + schedule.keyPublishLeadMs
}

/** True when the active key has signed for a full rotation interval and the next key may take over. */
export function rotationDue(doc: KeySetDocument, now: number, schedule: KeySchedule): boolean {
  const active = keyIn(doc, 'active')
  const readyAt = nextKeyReadyAt(doc, schedule)
  if (!active || readyAt === undefined) return false
  return now >= (active.activatedAt ?? active.createdAt) + schedule.keyRotationIntervalMs && now >= readyAt
}

/**
 * Rotates: the `next` key starts signing, the active key is retired (published until every token it
 * signed has expired and left every cache), and a new `next` key is generated. Refused while the next key
 * is younger than the publication lead, since some verifier might not have it yet.
 */
export async function rotateKeys(doc: KeySetDocument, now: number, schedule: KeySchedule): Promise<KeySetDocument> {
  const readyAt = nextKeyReadyAt(doc, schedule)
  if (readyAt === undefined || !keyIn(doc, 'active')) return ensureKeys(doc, now, schedule)
  if (now < readyAt) {
    const waitS = Math.ceil((readyAt - now) / 1000)
    throw new KeygateError('KG_KEY_ROTATION_TOO_EARLY', {
      message: `The next key has not been published long enough; rotation is possible from ${new Date(readyAt).toISOString()}`,
      headers: { 'retry-after': String(waitS) },
      details: { rotate_after: new Date(readyAt).toISOString() },
    })
  }
  const keys = doc.keys.map((k): StoredKey => {
    if (k.state === 'active') {
      return { ...k, state: 'retired', retiredAt: now, removeAt: now + schedule.retiredKeyKeepMs }
    }
    if (k.state === 'next') return { ...k, state: 'active', activatedAt: now }
    return k
  })
  keys.push(await generateSigningKey(schedule.rsaBits, now))
  return { ...doc, keys }
}

/**
 * Emergency revocation: the key leaves the JWKS at once and stays listed (unpublished) until every token
 * it signed has expired. Revoking the active key promotes `next` immediately, however young: verifiers
 * that lack it refetch on the unknown kid. Revoking `next` replaces it.
 */
export async function revokeKey(
  doc: KeySetDocument,
  kid: string,
  now: number,
  schedule: KeySchedule,
): Promise<{ doc: KeySetDocument; revoked: StoredKey }> {
  const target = doc.keys.find((k) => k.kid === kid)
  if (!target) throw new KeygateError('KG_KEY_NOT_FOUND')
  if (target.state === 'revoked') {
    throw new KeygateError('KG_KEY_STATE_CONFLICT', { message: 'The signing key is already revoked' })
  }
  const revoked: StoredKey = { ...target, state: 'revoked', revokedAt: now, removeAt: now + schedule.revokedKeyKeepMs }
  const keys = doc.keys.map((k) => (k.kid === kid ? revoked : k))
  return { doc: await ensureKeys({ ...doc, keys }, now, schedule), revoked }
}

/** Drops retired and revoked keys whose time is up; returns the same document when nothing changed. */
export function pruneKeys(doc: KeySetDocument, now: number): KeySetDocument {
  const keys = doc.keys.filter((k) => k.removeAt === undefined || k.removeAt > now)
  return keys.length === doc.keys.length ? doc : { ...doc, keys }
}

/** True when the scheduler has work on this set: missing keys, a due rotation or keys to drop. */
export function maintenanceDue(doc: KeySetDocument, now: number, schedule: KeySchedule): boolean {
  return (
    !keyIn(doc, 'active') ||
    !keyIn(doc, 'next') ||
    rotationDue(doc, now, schedule) ||
    doc.keys.some((k) => k.removeAt !== undefined && k.removeAt <= now)
  )
}

/** The scheduler's work on a set: fill it, rotate when due, drop expired keys. */
export async function maintainKeys(doc: KeySetDocument, now: number, schedule: KeySchedule): Promise<KeySetDocument> {
  let result = pruneKeys(await ensureKeys(doc, now, schedule), now)
  if (rotationDue(result, now, schedule)) result = await rotateKeys(result, now, schedule)
  return result
}
