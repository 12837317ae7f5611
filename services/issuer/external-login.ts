/**
 * Logging in with a token of a trusted external issuer (LOGIN_METHODS `external`, EXTERNAL_ISSUERS), and
 * the links between external identities and keygate accounts. The token is checked by the shared verifier
 * (lib/auth): issuer, keys, algorithms, types and audience all come from EXTERNAL_ISSUERS, keys from that
 * issuer's configured JWKS URL alone (cached, refetched on an unknown `kid` within a cooldown). An identity
 * (issuer, subject) belongs to one account. On first sight it is linked by a verified `email` claim when
 * the issuer is trusted for e-mail (the account is created when registration is open); otherwise only a
 * logged-in user (presenting the token) or an admin links it. Later logins by e-mail code land in the same
 * account, so services see one principal however the person logged in. A token that verifies is still
 * asked about at its provider when the issuer has an introspection endpoint (external-introspection.ts), so
 * a token the provider revoked logs nothing in and links nothing.
 */
import type { FastifyBaseLogger } from 'fastify'
import { JwksCache, TokenVerifier } from '@keygate/fastify-auth'
import { KeygateError } from '../../lib/errors.js'
import type { Accounts } from './accounts.js'
import { normaliseEmail } from './credentials.js'
import type { ExternalIssuer } from './external-issuers.js'
import { assertActive, IntrospectionUnavailable, providerUnavailable } from './external-introspection.js'
import type { IssuerMetrics } from './metrics.js'
import {
  IdentityLinkedElsewhereError,
  type IssuerStore,
  type LinkedIdentity,
  type UserRecord,
} from './store/types.js'

/** Clock tolerance for external tokens' `exp`, `nbf` and `iat`, in seconds. */
export const EXTERNAL_CLOCK_TOLERANCE_S = 30

export interface ExternalLoginOptions {
  issuers: readonly ExternalIssuer[]
  store: IssuerStore
  accounts: Accounts
  /** Whether an e-mail-linked identity without an account gets one (REGISTRATION=open). */
  registrationOpen: boolean
  metrics: IssuerMetrics
  log: FastifyBaseLogger
  /** Milliseconds since the epoch. */
  now: () => number
}

/** What a verified external token says about its holder. */
interface ExternalIdentity {
  issuer: string
  subject: string
  /** The normalised e-mail, only when the issuer is trusted for e-mail and marked it verified. */
  verifiedEmail: string | undefined
  email: string | undefined
}

/** External-token logins and identity links. */
export class ExternalLogin {
  readonly #o: ExternalLoginOptions
  readonly #byIssuer: ReadonlyMap<string, ExternalIssuer>
  readonly #caches: JwksCache[]
  readonly #verifier: TokenVerifier

  constructor(options: ExternalLoginOptions) {
    this.#o = options
    this.#byIssuer = new Map(options.issuers.map((issuer) => [issuer.issuer, issuer]))
    this.#caches = options.issuers.map(
      (issuer) =>
        new JwksCache({
          issuer: issuer.issuer,
          jwksUri: issuer.jwksUri,
          algorithms: issuer.algorithms,
          now: options.now,
          onFetch: (outcome, error) => {
            if (error)
              options.log.warn({ issuer: issuer.issuer, reason: error.message }, 'external JWKS fetch failed')
          },
        }),
    )
    this.#verifier = new TokenVerifier({
      profile: 'access_token',
      now: options.now,
      issuers: options.issuers.map((issuer, i) => ({
        issuer: issuer.issuer,
        audiences: [issuer.audience],
        algorithms: issuer.algorithms,
        types: issuer.types,
        profile: issuer.profile,
        clockToleranceS: EXTERNAL_CLOCK_TOLERANCE_S,
        keySource: this.#caches[i]!,
      })),
    })
  }

  /** Starts fetching the issuers' keys (in the background: an external issuer that is down delays nothing). */
  start(): void {
    for (const cache of this.#caches) cache.start()
  }

  async close(): Promise<void> {
    await Promise.all(this.#caches.map((cache) => cache.close()))
  }

  /** Whether `issuer` is a configured external issuer. */
  knows(issuer: string): boolean {
    return this.#byIssuer.has(issuer)
  }

  /**
   * The account an external token logs into, linking the identity by its verified e-mail on first sight
   * when the issuer is trusted for e-mail. 401 for a token that does not verify (the verifier's codes),
   * 403 `KG_EXTERNAL_IDENTITY_UNLINKED` when it cannot be linked.
   */
  async login(token: string): Promise<{ user: UserRecord; linked: boolean }> {
    const { store, accounts, metrics } = this.#o
    const identity = await this.#verify(token)
    const link = await store.identities.find(identity.issuer, identity.subject)
    const linkedUser = link && (await store.findUserById(link.userId))
    if (linkedUser) {
      metrics.externalLogins.inc({ outcome: 'success' })
      return { user: linkedUser, linked: false }
    }
    const user = identity.verifiedEmail
      ? await accounts.forVerifiedEmail(identity.verifiedEmail, this.#o.registrationOpen)
      : undefined
    if (!user) {
      metrics.externalLogins.inc({ outcome: 'unlinked' })
      throw new KeygateError('KG_EXTERNAL_IDENTITY_UNLINKED')
    }
    await this.#link(user.id, identity, 'email')
    metrics.externalLogins.inc({ outcome: 'success' })
    return { user, linked: true }
  }

  /** Links the identity a token proves to `userId` (a logged-in user presenting their external token). */
  async linkWithToken(userId: string, token: string): Promise<LinkedIdentity> {
    return this.#link(userId, await this.#verify(token), 'user')
  }

  /** Links an identity an admin vouches for; 400 when the issuer is not an external issuer. */
  async linkByAdmin(userId: string, issuer: string, subject: string): Promise<LinkedIdentity> {
    if (!this.knows(issuer)) {
      throw new KeygateError('KG_INVALID_REQUEST', { message: 'The issuer is not one of EXTERNAL_ISSUERS' })
    }
    await this.#o.accounts.get(userId)
    return this.#link(userId, { issuer, subject, verifiedEmail: undefined, email: undefined }, 'admin')
  }

  async #link(userId: string, identity: ExternalIdentity, linkedBy: LinkedIdentity['linkedBy']) {
    const record: LinkedIdentity = {
      issuer: identity.issuer,
      subject: identity.subject,
      userId,
      email: identity.email ?? null,
      linkedBy,
      linkedAt: this.#o.now(),
    }
    try {
      await this.#o.store.identities.link(record)
    } catch (err) {
      if (err instanceof IdentityLinkedElsewhereError) throw new KeygateError('KG_IDENTITY_LINKED_ELSEWHERE')
      throw err
    }
    this.#o.log.info(
      { userId, issuer: identity.issuer, subject: identity.subject, linkedBy },
      'external identity linked',
    )
    return (await this.#o.store.identities.find(identity.issuer, identity.subject)) ?? record
  }

  async #verify(token: string): Promise<ExternalIdentity> {
    let verified
    try {
      verified = await this.#verifier.verify(token)
    } catch (err) {
      this.#o.metrics.externalLogins.inc({ outcome: 'invalid_token' })
      throw err
    }
    const trusted = this.#byIssuer.get(verified.issuer)!
    if (trusted.introspection) await this.#assertActive(trusted, token, verified.subject)
    const claims = verified.claims
    const email = typeof claims.email === 'string' ? normaliseEmail(claims.email) : undefined
    return {
      issuer: verified.issuer,
      subject: verified.subject,
      email,
      verifiedEmail: trusted.trustedForEmail && claims.email_verified === true ? email : undefined,
    }
  }

  /** Asks the provider whether a token that verifies is still active; only then may it log in or link. */
  async #assertActive(trusted: ExternalIssuer, token: string, subject: string): Promise<void> {
    const { metrics, log } = this.#o
    try {
      await assertActive(trusted.introspection!, { token, issuer: trusted.issuer, subject })
    } catch (err) {
      if (err instanceof IntrospectionUnavailable) {
        metrics.externalLogins.inc({ outcome: 'provider_unavailable' })
        log.warn({ issuer: trusted.issuer, reason: err.message }, 'external token introspection failed')
        throw providerUnavailable()
      }
      metrics.externalLogins.inc({ outcome: 'inactive' })
      throw err
    }
  }
}
