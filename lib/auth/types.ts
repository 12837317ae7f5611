/**
 * The public types of the verification plugin: who the caller is, what a route requires, whom we trust.
 */
import type { KeyObject } from 'node:crypto'

/** The verified identity of a caller, from an access token or a gateway assertion. */
export interface Identity {
  /** `sub`: the user (or service) the token is about. */
  readonly subject: string
  /** `iss` of the access token (for an assertion: the issuer of the token it was derived from). */
  readonly issuer: string
  readonly clientId: string | undefined
  /** `sid`: the session the token belongs to. */
  readonly sessionId: string | undefined
  readonly roles: readonly string[]
  readonly scopes: readonly string[]
  /** `jti` of the access token. */
  readonly tokenId: string
  /** `iat` of the access token, in seconds. */
  readonly issuedAt: number
  /** `exp` of the token or assertion that proved this identity, in seconds. */
  readonly expiresAt: number
  /** `kid` of the key that signed the access token. */
  readonly keyId: string
  /** The verified claims, as signed. */
  readonly claims: Readonly<Record<string, unknown>>
  /** How the identity arrived: the caller's own access token, or a gateway assertion. */
  readonly source: 'token' | 'assertion'
  /** The raw access token when the caller presented one (to relay on the caller's behalf). */
  readonly token: string | undefined
}

export type AuthMode = 'required' | 'optional' | 'none'

/** What a route needs from its caller. */
export interface AuthRequirements {
  /** `required`: a valid token or 401; `optional`: verified when present; `none`: never looked at. */
  mode: AuthMode
  roles?: readonly string[]
  scopes?: readonly string[]
  /** Whether one (`any`) or every (`all`, the default) listed role and scope is needed. */
  match?: 'any' | 'all'
  /** A sensitive route refuses requests (503) while the revocation feed is stale, instead of accepting. */
  sensitive?: boolean
}

/** A source of verification keys for one issuer: a remote JWKS, or keys held in process (the issuer itself). */
export interface KeySource {
  /** Resolves a `kid` among the keys already held, refetching only within the source's own limits. */
  getKey(kid: string): VerificationKey | undefined | Promise<VerificationKey | undefined>
  /** Resolves once keys are loaded (readiness waits on it). */
  ready(): Promise<void>
  /** True when the source can currently vouch for its keys (false once stale beyond its bound). */
  usable(): boolean
  /** Called with the `kid`s that left the set, so cached verifications made with them are dropped. */
  onKeysRemoved(listener: (kids: string[]) => void): void
  close(): Promise<void>
}

/** A public key ready for `node:crypto.verify`, imported once, with the one algorithm it may be used with. */
export interface VerificationKey {
  readonly kid: string
  readonly alg: string
  readonly key: KeyObject
}

/** One issuer the verifier trusts, with everything that checks its tokens fixed here, never by the token. */
export interface TrustedIssuer {
  /** Exact `iss` value. */
  issuer: string
  /** JWKS URL; when absent, taken from the issuer's discovery document. Ignored when `keySource` is given. */
  jwksUri?: string
  /** Keys held in process instead of a remote JWKS. */
  keySource?: KeySource
  /** Accepted `aud` values: the token's `aud` must contain at least one. */
  audiences: string[]
  /** Allowed `alg` values. Default `['RS256']`. */
  algorithms?: string[]
  /** Accepted `typ` values (compared case-insensitively, `application/` prefix allowed). Default `['at+jwt']`. */
  types?: string[]
  /** Clock tolerance for `exp`, `nbf` and `iat`, in seconds. Default 30. */
  clockToleranceS?: number
  /** Base URL of the issuer's revocation feed (keygate issuers: `${issuer}/revocations`). */
  revocationFeed?: string
}
