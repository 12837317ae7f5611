/**
 * Checks a token this issuer signed, whatever its audience: what the introspection, revocation and token
 * exchange endpoints need (a resource server's verifier accepts its own audience alone; the issuer answers
 * for every audience it mints). The shared verifier does everything else: signature with the issuer's own
 * keys, `typ`, required claims, and the revocations this instance knows (the same set its Bearer routes
 * use). A small clock tolerance (ISSUED_TOKEN_CLOCK_TOLERANCE_S): instances sharing a database mint with
 * their own clocks, and a token another instance minted a moment ago must not look issued in the future.
 */
import { type Identity, type KeySource, type RevocationSet, TokenVerifier } from '@keygate/fastify-auth'
import { ACCESS_TOKEN_TYPE } from '../../../lib/identity/constants.js'
import { SIGNING_ALGORITHM } from '../keys/key-document.js'

/** Clock skew allowed between issuer instances, in seconds (5 s): `exp`, `nbf` and `iat` are checked with it. */
export const ISSUED_TOKEN_CLOCK_TOLERANCE_S = 5

/**
 * An audience list that contains every audience. The shared verifier's policy checks `aud` with
 * `audiences.includes`; this issuer vouches for tokens of any audience it minted, so here it always does.
 */
export class EveryAudience extends Array<string> {
  override includes(): boolean {
    return true
  }
}

export interface IssuedTokensOptions {
  issuer: string
  keySource: KeySource
  revocations: RevocationSet
  now: () => number
}

/** The issuer's own tokens, any audience (see the file comment). */
export class IssuedTokens {
  readonly #verifier: TokenVerifier

  constructor(options: IssuedTokensOptions) {
    this.#verifier = new TokenVerifier({
      issuers: [
        {
          issuer: options.issuer,
          audiences: new EveryAudience(),
          algorithms: [SIGNING_ALGORITHM],
          types: [ACCESS_TOKEN_TYPE],
          clockToleranceS: ISSUED_TOKEN_CLOCK_TOLERANCE_S,
          keySource: options.keySource,
          revocations: options.revocations,
        },
      ],
      profile: 'access_token',
      now: options.now,
    })
  }

  /** The identity of a live token of this issuer, or undefined (invalid, expired, revoked, foreign). */
  async check(token: string): Promise<Identity | undefined> {
    try {
      return await this.#verifier.verify(token)
    } catch {
      return undefined
    }
  }
}
