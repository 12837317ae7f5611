/**
 * Token verification per RFC 8725 and RFC 9068, with everything fixed by configuration: the token's `iss`
 * must be a trusted issuer before any key is looked at; its `alg` must be allowed for that issuer and equal
 * to the one algorithm its key is bound to; its `kid` is only an exact lookup among keys already held.
 * A token that verifies is remembered until it expires, its key goes, or it is revoked.
 */
import { createHash } from 'node:crypto'
import { KeygateError, type ErrorCode } from './errors.js'
import { verifySignature } from './algorithms.js'
import {
  type ClaimMapping,
  claimAt,
  type ClaimPath,
  claimPath,
  type IssuerTokenProfile,
  rolesFrom,
  scopesFrom,
} from './claims.js'
import {
  type GrantFilter,
  grantFilters,
  plainSubjectAllowed,
  type PrincipalOf,
  principalsOf,
} from './principal.js'
import { DEFAULT_MAX_TOKEN_BYTES, parseCompactJws } from './compact.js'
import { MAX_KID_LENGTH } from './jwk.js'
import type { AuthMetrics } from './metrics.js'
import { type CounterCell, KeyedCells } from './counter-cells.js'
import type { RevocationSet } from './revocation-set.js'
import type { Identity, IssuerGrants, KeySource, TrustedIssuer, VerificationKey } from './types.js'
import { DEFAULT_VERIFIED_CACHE_SIZE, VerifiedTokenCache } from './verified-cache.js'

/** Default clock tolerance for `exp`, `nbf` and `iat`, in seconds. */
export const DEFAULT_CLOCK_TOLERANCE_S = 30
export const DEFAULT_ALGORITHMS = ['RS256']
export const DEFAULT_TOKEN_TYPES = ['at+jwt']

/** Header parameters that carry or point at a key. Keys come from configuration only, so these are refused. */
const KEY_BEARING_HEADERS = ['jwk', 'jku', 'x5u', 'x5c'] as const

/**
 * What a verifier checks tokens as: RFC 9068 access tokens, or gateway assertions (which name the access
 * token they were derived from, so revocations apply to them too).
 */
export type TokenProfile = 'access_token' | 'assertion'

/** A trusted issuer with its key source resolved and its defaults applied. */
export interface IssuerPolicy extends Required<
  Omit<
    TrustedIssuer,
    'jwksUri' | 'keySource' | 'revocationFeed' | 'own' | 'grants' | 'profile' | 'claims' | 'required'
  >
> {
  keySource: KeySource
  /** keygate's own issuer: subjects are principals as they are (see principal.ts). Default false. */
  own?: boolean
  /** What this issuer may grant (see `IssuerGrants` for the defaults). */
  grants?: IssuerGrants
  /** Default `rfc9068`. */
  profile?: IssuerTokenProfile
  claims?: ClaimMapping
  /**
   * The revocations of this issuer's tokens, owned by the policy. Absent for a gateway whose assertions a
   * service verifies: an assertion follows the revocations of the access token it vouches for.
   */
  revocations?: RevocationSet
}

export interface VerifierOptions {
  issuers: IssuerPolicy[]
  profile: TokenProfile
  maxTokenBytes?: number
  cacheSize?: number
  /** Milliseconds since the epoch. */
  now?: () => number
  metrics?: AuthMetrics
  /**
   * The revocation sets that apply to the identities this verifier proves, one per issuer, each consulted
   * for identities of its issuer (an assertion's is the issuer of the token it vouches for). Default: the
   * sets of `issuers`.
   */
  revocations?: readonly RevocationSet[]
  /**
   * Assertions only: the trusted issuers of the access tokens assertions vouch for. An assertion naming any
   * other `at_iss` is refused; its principal and grants are those of its `at_iss`.
   */
  subjectIssuers?: readonly SubjectIssuer[]
}

/** What makes an issuer's subjects principals: its `iss`, whether it is keygate's own, what it may grant. */
export type SubjectIssuer = Pick<IssuerPolicy, 'issuer' | 'own' | 'grants'>

/** How an issuer's subjects become identities: principal ids and grants, compiled once per issuer. */
interface SubjectRules {
  readonly own: boolean
  readonly principalOf: PrincipalOf
  readonly roles: GrantFilter
  readonly scopes: GrantFilter
}

function subjectRules(policy: SubjectIssuer): SubjectRules {
  const own = policy.own ?? false
  const grants = grantFilters(policy.grants, own)
  return { own, principalOf: principalsOf(policy.issuer, own), roles: grants.roles, scopes: grants.scopes }
}

/** How one issuer's access tokens are read, compiled once from its profile and claim mapping. */
interface TokenRules {
  /** `rfc9068`: `typ`, `jti` and `client_id` required. */
  readonly strict: boolean
  /** Where roles are; a configured path may be malformed the same way the default one may. */
  readonly roles: ClaimPath
  /** Where scopes are; undefined: `scope`, else `scp`. */
  readonly scopes: ClaimPath | undefined
}

function tokenRules(policy: IssuerPolicy): TokenRules {
  return {
    strict: (policy.profile ?? 'rfc9068') === 'rfc9068',
    roles: claimPath(policy.claims?.roles ?? 'roles'),
    scopes: policy.claims?.scopes === undefined ? undefined : claimPath(policy.claims.scopes),
  }
}

/** A stable id for a token that carries no `jti` (generic JWT profile), so caches and assertions can name it. */
function tokenDigest(token: string): string {
  return `sha256:${createHash('sha256').update(token).digest('base64url')}`
}

/** Which issuer a verification was for, once known (a metrics label). */
interface Attempt {
  issuer: string
}

function keysStale(): KeygateError {
  return new KeygateError('KG_KEYS_STALE', { headers: { 'retry-after': '30' } })
}

function fail(code: ErrorCode, message?: string, claim?: string): never {
  throw new KeygateError(code, {
    ...(message === undefined ? {} : { message }),
    ...(claim === undefined ? {} : { details: { claim } }),
  })
}

/** RFC 9068 §4: `typ` compared case-insensitively, with an optional `application/` prefix. */
function normaliseType(typ: unknown): string | undefined {
  if (typeof typ !== 'string') return undefined
  const t = typ.toLowerCase()
  return t.startsWith('application/') ? t.slice('application/'.length) : t
}

const isNonEmptyString = (v: unknown): v is string => typeof v === 'string' && v.length > 0
const isTime = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v)
const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string')

export class TokenVerifier {
  readonly cache: VerifiedTokenCache
  readonly #issuers: Map<string, IssuerPolicy>
  /** Whose subjects the identities are: the issuers themselves, or for assertions the access tokens'. */
  readonly #subjectIssuers: Map<string, SubjectRules>
  readonly #tokenRules: Map<string, TokenRules>
  readonly #profile: TokenProfile
  readonly #maxTokenBytes: number
  readonly #now: () => number
  readonly #metrics: AuthMetrics | undefined
  /** Revocation sets by issuer. */
  readonly #revocations: ReadonlyMap<string, RevocationSet>
  /** Counter cells bound once (see CounterCells): counting costs an addition per verification. */
  readonly #cacheHits: CounterCell | undefined
  readonly #cacheMisses: CounterCell | undefined
  readonly #validFresh: KeyedCells<string, 'issuer' | 'result' | 'reason'> | undefined

  constructor(options: VerifierOptions) {
    this.#issuers = new Map(options.issuers.map((i) => [i.issuer, i]))
    this.#tokenRules = new Map(options.issuers.map((i) => [i.issuer, tokenRules(i)]))
    this.#subjectIssuers = new Map(
      (options.subjectIssuers ?? options.issuers).map((i) => [i.issuer, subjectRules(i)]),
    )
    this.#profile = options.profile
    this.#maxTokenBytes = options.maxTokenBytes ?? DEFAULT_MAX_TOKEN_BYTES
    this.#now = options.now ?? Date.now
    this.#metrics = options.metrics
    const revocations =
      options.revocations ?? options.issuers.flatMap((p) => (p.revocations ? [p.revocations] : []))
    this.#revocations = new Map(revocations.map((set) => [set.issuer, set]))
    this.#cacheHits = options.metrics?.verifiedCacheCells.cell({ result: 'hit' })
    this.#cacheMisses = options.metrics?.verifiedCacheCells.cell({ result: 'miss' })
    this.#validFresh =
      options.metrics &&
      new KeyedCells(options.metrics.verificationCells, (issuer) => ({
        issuer,
        result: 'valid',
        reason: 'fresh',
      }))
    this.cache = new VerifiedTokenCache(options.cacheSize ?? DEFAULT_VERIFIED_CACHE_SIZE)
    for (const policy of options.issuers) {
      policy.keySource.onKeysRemoved((kids) => this.cache.dropKeys(kids))
    }
    // Cached verifications that new revocations cover go at once, not at their next lookup.
    for (const set of revocations) set.onRevoked((revoked) => this.cache.dropWhere(revoked))
  }

  /**
   * Verifies a token and returns the identity it proves; throws a KeygateError with the reason.
   * @example
   * const identity = await verifier.verify(token)
   */
  async verify(token: string): Promise<Identity> {
    const nowS = this.#now() / 1000
    const cached = this.cache.get(token, nowS)
    if (cached !== undefined) {
      this.#cacheHits?.inc()
      this.#checkStillValid(cached, this.#policyOf(cached))
      return cached
    }
    this.#cacheMisses?.inc()
    const attempt: Attempt = { issuer: 'untrusted' }
    try {
      const { identity, kid, policy } = await this.#verifyFresh(token, nowS, attempt)
      this.#checkStillValid(identity, policy)
      this.cache.set(token, identity, kid, identity.expiresAt + policy.clockToleranceS)
      this.#validFresh?.inc(attempt.issuer)
      return identity
    } catch (err) {
      const reason = err instanceof KeygateError ? err.code : 'error'
      this.#metrics?.verifications.labels(attempt.issuer, 'invalid', reason).inc()
      throw err
    }
  }

  /** The policy that verified an identity: its own issuer, or for an assertion the asserting gateway. */
  #policyOf(identity: Identity): IssuerPolicy | undefined {
    return this.#issuers.get(
      identity.source === 'assertion' ? (identity.claims.iss as string) : identity.issuer,
    )
  }

  /** What can change after a token verified: its key source going stale, or a revocation. */
  #checkStillValid(identity: Identity, policy: IssuerPolicy | undefined): void {
    if (policy && !policy.keySource.usable()) throw keysStale()
    if (this.#revocations.get(identity.issuer)?.isRevoked(identity)) fail('KG_TOKEN_REVOKED')
  }

  async #verifyFresh(
    token: string,
    nowS: number,
    attempt: Attempt,
  ): Promise<{ identity: Identity; kid: string; policy: IssuerPolicy }> {
    const { header, payload, signingInput, signature } = parseCompactJws(token, this.#maxTokenBytes)

    const policy = typeof payload.iss === 'string' ? this.#issuers.get(payload.iss) : undefined
    if (!policy) fail('KG_TOKEN_ISSUER_UNKNOWN')
    attempt.issuer = policy.issuer
    if (typeof header.alg !== 'string' || !policy.algorithms.includes(header.alg))
      fail('KG_TOKEN_ALG_NOT_ALLOWED')
    if (header.crit !== undefined) fail('KG_TOKEN_CRIT_UNSUPPORTED')
    for (const name of KEY_BEARING_HEADERS) {
      if (header[name] !== undefined) {
        fail(
          'KG_TOKEN_MALFORMED',
          `The token header names a key (${name}); keys come from configuration only`,
        )
      }
    }
    const rules = this.#tokenRules.get(policy.issuer)!
    // The generic JWT profile lets `typ` be absent (many IdPs omit it); present, it must be allowed.
    const typ = normaliseType(header.typ)
    if (
      typ === undefined
        ? header.typ !== undefined || rules.strict || this.#profile === 'assertion'
        : !policy.types.includes(typ)
    ) {
      fail('KG_TOKEN_TYPE_INVALID')
    }
    // RFC 7515 makes `kid` optional, and the generic profile follows: without one, only the sole key held for
    // the token's alg can be meant. keygate's own tokens and assertions always name their key.
    const kidless = header.kid === undefined && !rules.strict && this.#profile !== 'assertion'
    const sole = kidless ? this.#soleKey(policy, header.alg) : undefined
    const kid = sole?.kid ?? header.kid
    if (!isNonEmptyString(kid) || kid.length > MAX_KID_LENGTH) {
      fail('KG_TOKEN_MALFORMED', 'The token header has no usable kid')
    }

    // Claims before the signature: garbage is refused without spending an RSA verification on it.
    const identity = this.#identityFrom(payload, kid, policy, rules, nowS, token)

    const key = sole ?? (await policy.keySource.getKey(kid))
    if (key === undefined) {
      if (!policy.keySource.usable()) throw keysStale()
      fail('KG_TOKEN_KEY_UNKNOWN')
    }
    if (key.alg !== header.alg) fail('KG_TOKEN_ALG_NOT_ALLOWED')
    if (!verifySignature(key.alg, key.key, signingInput, signature)) fail('KG_TOKEN_SIGNATURE_INVALID')
    return { identity, kid, policy }
  }

  /** The one key for `alg` a token without kid can mean; refused when there are none or several. */
  #soleKey(policy: IssuerPolicy, alg: string): VerificationKey {
    const key = policy.keySource.soleKey?.(alg)
    if (key !== undefined) return key
    if (!policy.keySource.usable()) throw keysStale()
    return fail(
      'KG_TOKEN_KEY_UNKNOWN',
      'The token names no kid and the issuer holds no single key for its alg',
    )
  }

  /**
   * The identity a payload proves once its signature checks out (`token`: the token itself, kept on access
   * token identities to relay). Built in one literal: this runs for every never-seen token.
   */
  #identityFrom(
    p: Record<string, unknown>,
    kid: string,
    policy: IssuerPolicy,
    tokenRules: TokenRules,
    nowS: number,
    token: string,
  ): Identity {
    const tolerance = policy.clockToleranceS
    if (!isNonEmptyString(p.sub)) fail('KG_TOKEN_CLAIM_INVALID', undefined, 'sub')
    if (tokenRules.strict ? !isNonEmptyString(p.jti) : p.jti !== undefined && !isNonEmptyString(p.jti)) {
      fail('KG_TOKEN_CLAIM_INVALID', undefined, 'jti')
    }
    if (!isTime(p.exp)) fail('KG_TOKEN_CLAIM_INVALID', undefined, 'exp')
    if (!isTime(p.iat)) fail('KG_TOKEN_CLAIM_INVALID', undefined, 'iat')
    if (p.nbf !== undefined && !isTime(p.nbf)) fail('KG_TOKEN_CLAIM_INVALID', undefined, 'nbf')
    const aud = p.aud
    if (!(isNonEmptyString(aud) || (isStringArray(aud) && aud.length > 0))) {
      fail('KG_TOKEN_CLAIM_INVALID', undefined, 'aud')
    }
    if (
      !(typeof aud === 'string'
        ? policy.audiences.includes(aud)
        : aud.some((a) => policy.audiences.includes(a)))
    ) {
      fail('KG_TOKEN_AUDIENCE_INVALID')
    }
    if (nowS >= p.exp + tolerance) fail('KG_TOKEN_EXPIRED')
    if (p.nbf !== undefined && p.nbf > nowS + tolerance) fail('KG_TOKEN_NOT_YET_VALID')
    if (p.iat > nowS + tolerance)
      fail('KG_TOKEN_NOT_YET_VALID', 'The token claims to be issued in the future')
    const assertion = this.#profile === 'assertion'
    // An assertion carries roles and scope as the gateway mapped them; an access token where its issuer puts them.
    const rolesClaim = assertion ? p.roles : claimAt(p, tokenRules.roles)
    const mappedRoles = rolesFrom(rolesClaim)
    if (mappedRoles === undefined) fail('KG_TOKEN_CLAIM_INVALID', undefined, tokenRules.roles.join('.'))
    let scopesClaim: unknown
    let scopesName = 'scope'
    if (assertion || (tokenRules.strict && tokenRules.scopes === undefined && p.scp === undefined)) {
      if (p.scope !== undefined && typeof p.scope !== 'string')
        fail('KG_TOKEN_CLAIM_INVALID', undefined, 'scope')
      scopesClaim = p.scope
    } else if (tokenRules.scopes !== undefined) {
      scopesClaim = claimAt(p, tokenRules.scopes)
      scopesName = tokenRules.scopes.join('.')
    } else {
      scopesClaim = p.scope ?? p.scp
      scopesName = p.scope === undefined ? 'scp' : 'scope'
    }
    const mappedScopes = scopesFrom(scopesClaim)
    if (mappedScopes === undefined) fail('KG_TOKEN_CLAIM_INVALID', undefined, scopesName)
    if (p.sid !== undefined && !isNonEmptyString(p.sid)) fail('KG_TOKEN_CLAIM_INVALID', undefined, 'sid')
    if (p.client_id !== undefined && typeof p.client_id !== 'string') {
      fail('KG_TOKEN_CLAIM_INVALID', undefined, 'client_id')
    }
    if (p.azp !== undefined && typeof p.azp !== 'string') fail('KG_TOKEN_CLAIM_INVALID', undefined, 'azp')
    const rules =
      this.#profile === 'access_token'
        ? this.#subjectIssuers.get(policy.issuer)
        : isNonEmptyString(p.at_iss)
          ? this.#subjectIssuers.get(p.at_iss)
          : undefined
    if (rules === undefined) fail('KG_TOKEN_CLAIM_INVALID', undefined, 'at_iss')
    if (rules.own && !plainSubjectAllowed(p.sub)) fail('KG_TOKEN_CLAIM_INVALID', undefined, 'sub')
    // Only what the token's issuer may grant counts (principle 7); the rest is dropped, not refused.
    const roles = rules.roles(Object.freeze([...mappedRoles]))
    const scopes = rules.scopes(Object.freeze([...mappedScopes]))
    const principal = rules.principalOf(p.sub)
    // The parsed payload belongs to this verification alone: frozen as it is rather than copied.
    const claims = Object.freeze(p)
    if (!assertion) {
      // RFC 9068 requires client_id; the generic profile takes it from azp (OIDC) when absent, or none.
      const clientId =
        (p.client_id as string | undefined) ?? (tokenRules.strict ? undefined : (p.azp as string | undefined))
      if (tokenRules.strict && !isNonEmptyString(clientId))
        fail('KG_TOKEN_CLAIM_INVALID', undefined, 'client_id')
      return {
        subject: p.sub,
        principal,
        clientId,
        sessionId: p.sid as string | undefined,
        roles,
        scopes,
        expiresAt: p.exp,
        claims,
        issuer: policy.issuer,
        tokenId: (p.jti as string | undefined) ?? tokenDigest(token),
        issuedAt: p.iat,
        keyId: kid,
        source: 'token',
        token,
      }
    }
    // A gateway assertion vouches for an access token: identity (and revocation) follow that token.
    if (!isNonEmptyString(p.at_jti)) fail('KG_TOKEN_CLAIM_INVALID', undefined, 'at_jti')
    if (!isTime(p.at_iat)) fail('KG_TOKEN_CLAIM_INVALID', undefined, 'at_iat')
    if (!isNonEmptyString(p.at_iss)) fail('KG_TOKEN_CLAIM_INVALID', undefined, 'at_iss')
    if (!isNonEmptyString(p.at_kid)) fail('KG_TOKEN_CLAIM_INVALID', undefined, 'at_kid')
    return {
      subject: p.sub,
      principal,
      clientId: p.client_id as string | undefined,
      sessionId: p.sid as string | undefined,
      roles,
      scopes,
      expiresAt: p.exp,
      claims,
      issuer: p.at_iss,
      tokenId: p.at_jti,
      issuedAt: p.at_iat,
      keyId: p.at_kid,
      source: 'assertion',
      token: undefined,
    }
  }
}
