/**
 * The public types of the verification plugin: who the caller is, what a route requires, whom we trust.
 */
import type { KeyObject } from 'node:crypto'
import type { ClaimMapping, IssuerTokenProfile } from './claims.js'

/** The verified identity of a caller, from an access token or a gateway assertion. */
export interface Identity {
  /** `sub`: the user (or service) the token is about, as its issuer names it. */
  readonly subject: string
  /**
   * Who the caller is across every trusted issuer, the key of any data kept about them: keygate's own users
   * by their plain `sub` (existing data stays valid), any other issuer's as `<iss>#<sub>` (see principal.ts).
   */
  readonly principal: string
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

/**
 * What a trusted issuer may grant: roles and scopes it names beyond these are dropped from its identities.
 * `'*'` grants every value. Default: everything for keygate's own issuer; for any other, every scope and
 * every role but keygate's privileged ones (`PRIVILEGED_ROLES`).
 */
export interface IssuerGrants {
  roles?: readonly string[] | '*'
  scopes?: readonly string[] | '*'
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
  /** The issuers (exact `iss`) whose callers the route accepts; default every trusted one. */
  issuers?: readonly string[]
}

/** A source of verification keys for one issuer: a remote JWKS, or keys held in process (the issuer itself). */
export interface KeySource {
  /** Resolves a `kid` among the keys already held, refetching only within the source's own limits. */
  getKey(kid: string): VerificationKey | undefined | Promise<VerificationKey | undefined>
  /**
   * For a token without `kid`: the one key held for `alg`, or undefined when there are none or several
   * (keys are never tried in turn). Sources without it refuse tokens without `kid`.
   */
  soleKey?(alg: string): VerificationKey | undefined
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
  /** The JWK's `kid`; for a key published without one, a label (see `unnamed`). */
  readonly kid: string
  readonly alg: string
  readonly key: KeyObject
  /** Published without `kid`: usable only by tokens without one, as the sole key for its algorithm. */
  readonly unnamed?: boolean
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
  /**
   * keygate's own issuer: its subjects are principals as they are, and it grants every role by default.
   * Any other issuer's subjects are qualified with its `iss`, so they can never name one of keygate's users.
   */
  own?: boolean
  /**
   * Readiness waits for this issuer's keys (and feed). Default: true for keygate's own issuer, false for
   * others — unless no issuer is keygate's own, then every one. An issuer not required is reported by name in
   * readiness detail and metrics; its tokens get 503 with Retry-After while its keys are unavailable.
   */
  required?: boolean
  /** Roles and scopes this issuer may grant (see `IssuerGrants` for defaults). */
  grants?: IssuerGrants
  /**
   * How its access tokens are checked: `rfc9068` (default; `typ` `at+jwt`, `jti` and `client_id` required)
   * or `jwt` (`typ` `JWT`, `at+jwt` or absent; `jti` and `client_id` optional, `client_id` else `azp`).
   */
  profile?: IssuerTokenProfile
  /** Claim paths of roles and scopes (default `roles`, and `scope` else `scp`); see claims.ts. */
  claims?: ClaimMapping
  /** Allowed `alg` values. Default `['RS256']`. */
  algorithms?: string[]
  /** Accepted `typ` values (compared case-insensitively, `application/` prefix allowed). Default `['at+jwt']`. */
  types?: string[]
  /** Clock tolerance for `exp`, `nbf` and `iat`, in seconds. Default 30. */
  clockToleranceS?: number
  /** Base URL of the issuer's revocation feed (keygate issuers: `${issuer}/revocations`). */
  revocationFeed?: string
}
