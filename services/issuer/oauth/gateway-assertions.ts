/**
 * The gateway's identity assertions as token-exchange subjects (RFC 8693 `subject_token_type`
 * `urn:ietf:params:oauth:token-type:jwt`). A service behind the gateway holds the assertion addressed to it,
 * never the caller's raw token; to call another service on the caller's behalf it exchanges that assertion.
 * The issuer checks it as every service does (the gateway's Ed25519 keys from its JWKS, `typ`, expiry) and
 * against the revocations of the access token it vouches for (this issuer's own users only: a token of
 * another issuer cannot become one of ours), then the grant checks that it is addressed to the client that
 * presents it (grants.ts), so an assertion captured at one service is worth nothing to any other client.
 */
import { type Identity, JwksCache, type RevocationSet, TokenVerifier } from '@keygate/fastify-auth'
import { ASSERTION_ALGORITHM, ASSERTION_TYPE, GATEWAY_JWKS_PATH } from '../../../lib/identity/constants.js'
import { EveryAudience, ISSUED_TOKEN_CLOCK_TOLERANCE_S } from './issued-tokens.js'

export interface GatewayAssertionsOptions {
  /** GATEWAY_URL: the assertions' `iss`; its keys are at `${gateway}${GATEWAY_JWKS_PATH}`. */
  gateway: string
  /** This issuer's `iss`: assertions must vouch for its tokens. */
  issuer: string
  /** This issuer's revocations (the same set its Bearer routes use). */
  revocations: RevocationSet
  now: () => number
}

/** Checks gateway assertions (see the file comment). */
export class GatewayAssertions {
  readonly #keys: JwksCache
  readonly #verifier: TokenVerifier

  constructor(options: GatewayAssertionsOptions) {
    this.#keys = new JwksCache({
      issuer: options.gateway,
      jwksUri: `${options.gateway}${GATEWAY_JWKS_PATH}`,
      algorithms: [ASSERTION_ALGORITHM],
      now: options.now,
    })
    this.#verifier = new TokenVerifier({
      issuers: [
        {
          issuer: options.gateway,
          // Every service's assertion verifies here; the grant compares `aud` with the client's service.
          audiences: new EveryAudience(),
          algorithms: [ASSERTION_ALGORITHM],
          types: [ASSERTION_TYPE],
          clockToleranceS: ISSUED_TOKEN_CLOCK_TOLERANCE_S,
          keySource: this.#keys,
        },
      ],
      profile: 'assertion',
      revocations: [options.revocations],
      subjectIssuers: [{ issuer: options.issuer, own: true }],
      now: options.now,
    })
  }

  /** The identity a live, unrevoked assertion proves, or undefined. */
  async check(assertion: string): Promise<Identity | undefined> {
    // Keys are fetched at the first exchange, never at start: the issuer's readiness does not wait on the
    // gateway, which may come up after it. Then one fetch (shared by concurrent callers) before failing.
    if (!this.#keys.usable()) await this.#keys.refresh()
    try {
      return await this.#verifier.verify(assertion)
    } catch {
      return undefined
    }
  }

  close(): Promise<void> {
    return this.#keys.close()
  }
}
