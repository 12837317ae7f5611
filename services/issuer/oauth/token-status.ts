/**
 * Introspection (RFC 7662) and revocation (RFC 7009) of the issuer's access tokens. Introspection tells a
 * resource server whether a token is active and what it says; anything not proven active — malformed,
 * foreign, expired, revoked — is `{ active: false }`, never an error. Revocation lets a client withdraw a
 * token issued to it (its `client_id`): recorded through Revocations, so every verifier learns of it
 * through the feed. The answer is 200 whatever the token was (RFC 7009 §2.2): a caller learns nothing
 * about tokens that are not its own.
 */
import type { Revocations } from '../feed/revocations.js'
import type { ClientRecord } from '../store/types.js'
import { oauthError, type OAuthForm, invalidRequest, single } from './form.js'
import type { IssuedTokens } from './issued-tokens.js'

export interface TokenStatusOptions {
  issuedTokens: Pick<IssuedTokens, 'check'>
  revocations: Pick<Revocations, 'recordToken'>
  /** Clients that may introspect. */
  introspectionClients: ReadonlySet<string>
}

/** What introspection answers: `active`, and for an active token its claims (RFC 7662 §2.2). */
export type IntrospectionResponse =
  { active: false } | ({ active: true; token_type: 'Bearer' } & Record<string, unknown>)

/** Introspection and revocation (see the file comment). */
export class TokenStatus {
  readonly #o: TokenStatusOptions

  constructor(options: TokenStatusOptions) {
    this.#o = options
  }

  /** Whether the token in the form is active, for a client allowed to ask. */
  async introspect(client: ClientRecord, form: OAuthForm): Promise<IntrospectionResponse> {
    if (!this.#o.introspectionClients.has(client.id)) throw oauthError('KG_OAUTH_INTROSPECTION_FORBIDDEN')
    const token = single(form, 'token')
    if (token === undefined) throw invalidRequest('token is required')
    // A refresh token (opaque, the browser's) is never shown to a resource server: inactive to it.
    const identity = await this.#o.issuedTokens.check(token)
    if (!identity) return { active: false }
    return { ...identity.claims, active: true, token_type: 'Bearer' }
  }

  /** Revokes the token in the form when it is a live access token issued to `client`; otherwise nothing. */
  async revoke(client: ClientRecord, form: OAuthForm): Promise<boolean> {
    const token = single(form, 'token')
    if (token === undefined) throw invalidRequest('token is required')
    // token_type_hint is only a hint (RFC 7009 §2.1); clients hold access tokens alone here.
    const identity = await this.#o.issuedTokens.check(token)
    if (!identity || identity.clientId !== client.id) return false
    await this.#o.revocations.recordToken(identity.tokenId)
    return true
  }
}
