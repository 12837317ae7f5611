/**
 * The token endpoint's grants: `client_credentials` (RFC 6749 §4.4) for a client acting as itself, and
 * token exchange (RFC 8693) for a client acting for a user. Both mint RFC 9068 access tokens addressed to
 * the resource servers (RFC 8707 `resource`, RFC 8693 `audience`) the client is registered for, never
 * beyond its scopes. No refresh tokens: a client asks again (RFC 6749 §4.4.3).
 */
import type { Identity } from '@keygate/fastify-auth'
import type { AccessTokenMinter, MintedAccessToken } from '../access-tokens.js'
import type { ClientRecord } from '../store/types.js'
import { GRANT_CLIENT_CREDENTIALS, GRANT_TOKEN_EXCHANGE } from './clients.js'
import { list, oauthError, type OAuthForm, single, invalidRequest } from './form.js'
import type { GatewayAssertions } from './gateway-assertions.js'
import type { IssuedTokens } from './issued-tokens.js'

export const TOKEN_TYPE_ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token'
/** RFC 8693 §3: a JWT; here, the gateway's assertion addressed to the client's own service. */
export const TOKEN_TYPE_JWT = 'urn:ietf:params:oauth:token-type:jwt'
/** Longest `scope` parameter read, in characters. */
const MAX_SCOPE_LENGTH = 2048

/** The token endpoint's answer (RFC 6749 §5.1, RFC 8693 §2.2.1). */
export interface TokenResponse {
  access_token: string
  token_type: 'Bearer'
  expires_in: number
  scope: string
  issued_token_type?: string
}

export interface GrantsOptions {
  minter: Pick<AccessTokenMinter, 'mintForClient'>
  issuedTokens: Pick<IssuedTokens, 'check'>
  /** Gateway assertions as subject tokens; without it only access tokens are accepted. */
  assertions?: Pick<GatewayAssertions, 'check'>
  /** Longest lifetime of an exchanged token, in milliseconds. */
  tokenExchangeTtlMs: number
  /** Milliseconds since the epoch. */
  now: () => number
}

/** The grants (see the file comment). */
export class Grants {
  readonly #o: GrantsOptions

  constructor(options: GrantsOptions) {
    this.#o = options
  }

  /** Answers a token request of an authenticated client. */
  async grant(client: ClientRecord, form: OAuthForm): Promise<TokenResponse> {
    const grantType = single(form, 'grant_type')
    if (grantType === undefined) throw invalidRequest('grant_type is required')
    if (grantType !== GRANT_CLIENT_CREDENTIALS && grantType !== GRANT_TOKEN_EXCHANGE) {
      throw oauthError('KG_OAUTH_UNSUPPORTED_GRANT_TYPE')
    }
    if (!client.grantTypes.includes(grantType)) throw oauthError('KG_OAUTH_UNAUTHORIZED_CLIENT')
    return grantType === GRANT_CLIENT_CREDENTIALS
      ? this.#clientCredentials(client, form)
      : this.#tokenExchange(client, form)
  }

  async #clientCredentials(client: ClientRecord, form: OAuthForm): Promise<TokenResponse> {
    const audience = targetOf(client, form)
    const scope = grantedScope(requestedScope(form), client.scopes)
    const minted = await this.#o.minter.mintForClient({
      subject: client.id,
      clientId: client.id,
      audience,
      scope: scope.join(' '),
    })
    return answer(minted, scope)
  }

  /**
   * RFC 8693: the subject token must be a live user token of this issuer (with a session, so that its
   * revocation — logout, logout-all, an admin — covers the new token too, which carries the same `sid`):
   * an access token, or the gateway's assertion of one addressed to the client's own service.
   */
  async #tokenExchange(client: ClientRecord, form: OAuthForm): Promise<TokenResponse> {
    const subjectToken = single(form, 'subject_token')
    const subjectTokenType = single(form, 'subject_token_type')
    if (subjectToken === undefined || subjectTokenType === undefined) {
      throw invalidRequest('subject_token and subject_token_type are required')
    }
    if (subjectTokenType !== TOKEN_TYPE_ACCESS_TOKEN && subjectTokenType !== TOKEN_TYPE_JWT) {
      throw invalidRequest(`subject_token_type must be ${TOKEN_TYPE_ACCESS_TOKEN} or ${TOKEN_TYPE_JWT}`)
    }
    const requested = single(form, 'requested_token_type')
    if (requested !== undefined && requested !== TOKEN_TYPE_ACCESS_TOKEN) {
      throw invalidRequest(`requested_token_type may only be ${TOKEN_TYPE_ACCESS_TOKEN}`)
    }
    if (single(form, 'actor_token') !== undefined) {
      throw invalidRequest('actor_token is not supported: the authenticated client is the actor')
    }
    const audience = targetOf(client, form)
    const subject =
      subjectTokenType === TOKEN_TYPE_JWT
        ? await this.#assertionSubject(client, subjectToken)
        : await this.#o.issuedTokens.check(subjectToken)
    if (!subject)
      throw oauthError('KG_OAUTH_INVALID_GRANT', 'The subject token is invalid, expired or revoked')
    // Within the clock tolerance but past its `exp`: nothing of its life is left to hand on.
    if (subject.expiresAt * 1000 <= this.#o.now()) {
      throw oauthError('KG_OAUTH_INVALID_GRANT', 'The subject token is invalid, expired or revoked')
    }
    if (subject.sessionId === undefined) {
      throw oauthError('KG_OAUTH_INVALID_GRANT', "The subject token is not a user's session token")
    }
    const allowed = client.scopes.filter((s) => subject.scopes.includes(s))
    const scope = grantedScope(requestedScope(form), allowed)
    const prior = subject.claims.act
    const minted = await this.#o.minter.mintForClient({
      subject: subject.subject,
      clientId: client.id,
      audience,
      scope: scope.join(' '),
      sessionId: subject.sessionId,
      roles: subject.roles,
      act: { sub: client.id, ...(isObject(prior) ? { act: prior } : {}) },
      ttlMs: this.#o.tokenExchangeTtlMs,
      notAfterS: Math.floor(subject.expiresAt),
    })
    return { ...answer(minted, scope), issued_token_type: TOKEN_TYPE_ACCESS_TOKEN }
  }

  /**
   * The identity of a gateway assertion presented by the client of the service it is addressed to: an
   * assertion captured at one service cannot be exchanged by any other client, nor by a client that is no
   * service (`service` null).
   */
  async #assertionSubject(client: ClientRecord, assertion: string): Promise<Identity | undefined> {
    if (!this.#o.assertions) throw invalidRequest(`subject_token_type must be ${TOKEN_TYPE_ACCESS_TOKEN}`)
    const identity = await this.#o.assertions.check(assertion)
    if (!identity) return undefined
    if (client.service === null || identity.claims.aud !== client.service) {
      throw oauthError('KG_OAUTH_INVALID_GRANT', "The assertion is not addressed to this client's service")
    }
    return identity
  }
}

function answer(minted: MintedAccessToken, scope: string[]): TokenResponse {
  return {
    access_token: minted.token,
    token_type: 'Bearer',
    expires_in: minted.expiresIn,
    scope: scope.join(' '),
  }
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

/** The requested scopes, or undefined when the client asked for none (RFC 6749 §3.3). */
function requestedScope(form: OAuthForm): string[] | undefined {
  const scope = single(form, 'scope')
  if (scope === undefined) return undefined
  if (
    scope.length > MAX_SCOPE_LENGTH ||
    !/^[\x21\x23-\x5B\x5D-\x7E]+( [\x21\x23-\x5B\x5D-\x7E]+)*$/.test(scope)
  ) {
    throw oauthError('KG_OAUTH_INVALID_SCOPE', 'scope must be space-separated scope tokens (RFC 6749 §3.3)')
  }
  return [...new Set(scope.split(' '))]
}

/** The scopes granted: what was asked if all of it is allowed, else everything allowed; never none. */
function grantedScope(requested: string[] | undefined, allowed: string[]): string[] {
  if (requested !== undefined && requested.some((s) => !allowed.includes(s))) {
    throw oauthError('KG_OAUTH_INVALID_SCOPE')
  }
  const scope = requested ?? allowed
  if (scope.length === 0) throw oauthError('KG_OAUTH_INVALID_SCOPE', 'No scope would remain for this token')
  return scope
}

/**
 * The token's audience: every `resource` and `audience` named (each one the client is registered for), or
 * the client's one audience when it names none. A client with several must choose: a token is meant for
 * the services it names, not for every service the client may call.
 */
function targetOf(client: ClientRecord, form: OAuthForm): string | string[] {
  const named = [...new Set([...list(form, 'resource'), ...list(form, 'audience')])]
  if (named.length === 0) {
    if (client.audiences.length === 1) return client.audiences[0]!
    throw oauthError('KG_OAUTH_INVALID_TARGET', 'Name the resource (or audience) the token is for')
  }
  for (const target of named) {
    if (!client.audiences.includes(target)) throw oauthError('KG_OAUTH_INVALID_TARGET')
  }
  return named.length === 1 ? named[0]! : named
}
