/**
 * The secrets verifiers present on the revocation feed. Several are accepted at once so the secret can be
 * rotated without a gap: issuers accept old and new, verifiers move to the new one, issuers drop the old.
 */
import { generatedFeedSecret } from '../../../lib/auth-config.js'
import { sameSecret } from '../../../lib/secrets.js'

/** Checks a presented feed secret against every accepted one in constant time. */
export class FeedSecrets {
  readonly #secrets: readonly string[]

  /** `secrets`: the accepted secrets (at least one). */
  constructor(secrets: readonly string[]) {
    if (secrets.length === 0) throw new Error('keygate: the revocation feed needs at least one secret')
    this.#secrets = [...secrets]
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
   * True when `presented` is one of the secrets. Each comparison takes a time independent of where a guess
   * first differs and of the secrets' lengths (`sameSecret`); every secret is compared, match or not.
   */
  accepts(presented: string | string[] | undefined): boolean {
    if (typeof presented !== 'string' || presented.length === 0) return false
    let accepted = false
    for (const expected of this.#secrets) accepted = sameSecret(presented, expected) || accepted
    return accepted
  }
}
