/**
 * The secrets verifiers present on the revocation feed. Several are accepted at once so the secret can be
 * rotated without a gap: issuers accept old and new, verifiers move to the new one, issuers drop the old.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { generatedFeedSecret } from '../../../lib/auth/feed-protocol.js'

/** Checks a presented feed secret against every accepted one in constant time. */
export class FeedSecrets {
  readonly #digests: Buffer[]

  /** `secrets`: the accepted secrets (at least one). */
  constructor(secrets: readonly string[]) {
    if (secrets.length === 0) throw new Error('keygate: the revocation feed needs at least one secret')
    this.#digests = secrets.map(digest)
  }

  /**
   * The secrets an issuer accepts: REVOCATION_FEED_SECRET's list, or else the secret generated once in
   * `${DATA_DIR}/revocation-feed.secret` — the one verifiers on the same machine default to, so a local
   * setup agrees with no configuration.
   */
  static fromSettings(configured: readonly string[] | undefined, dataDir: string): FeedSecrets {
    return new FeedSecrets(configured ?? [generatedFeedSecret(dataDir)])
  }

  /**
   * True when `presented` is one of the secrets. Comparing fixed-length digests keeps the time independent
   * of where a guess first differs and of the secrets' lengths; every secret is compared, match or not.
   */
  accepts(presented: string | string[] | undefined): boolean {
    if (typeof presented !== 'string' || presented.length === 0) return false
    const candidate = digest(presented)
    let accepted = false
    for (const expected of this.#digests) accepted = timingSafeEqual(candidate, expected) || accepted
    return accepted
  }
}

function digest(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest()
}
