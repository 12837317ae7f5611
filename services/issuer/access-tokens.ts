/**
 * Access tokens per RFC 9068, signed by the key set's active key. They carry what services need to decide
 * (subject, session, roles, scope) and nothing else: no e-mail or other personal data.
 *
 * The compact JWS (RFC 7515 §7.1) is assembled here and signed by WebCrypto: the token is byte for byte what
 * jose's SignJWT made (same header and claim order; RS256 signatures are deterministic), without its
 * per-token copy and checks of claims we build ourselves. WebCrypto signs on libuv's thread pool; signing
 * synchronously (`node:crypto.sign`) on the event loop cost more CPU per refresh, not less (measured, see
 * docs/benchmarks.md).
 */
import { randomUUID, webcrypto } from 'node:crypto'
import { ACCESS_TOKEN_TYPE } from '../../lib/identity/constants.js'
import { SIGNING_ALGORITHM } from './keys/key-document.js'
import type { KeySet } from './keys/key-set.js'

/** The scope of a user's tokens (keygate has no consent step: a user's token covers every service). */
export const DEFAULT_USER_SCOPE = 'openid profile orders files'

export interface AccessTokenOptions {
  keys: KeySet
  issuer: string
  audience: string
  ttlMs: number
  now: () => number
}

/** Who a token is for. */
export interface TokenSubject {
  userId: string
  sessionId: string
  clientId: string
  roles: readonly string[]
  scope?: string
}

export interface MintedAccessToken {
  token: string
  jti: string
  /** Lifetime in seconds (`expires_in`). */
  expiresIn: number
}

/**
 * A token for a registered client (oauth/): its own (client credentials) or a user's on its behalf (token
 * exchange, with `act` naming the client and `sid` the user's session, so the session's revocation covers it).
 */
export interface ClientTokenClaims {
  subject: string
  clientId: string
  /** The resource server(s) the token is for (RFC 8707). */
  audience: string | string[]
  scope: string
  sessionId?: string
  roles?: readonly string[]
  /** RFC 8693 §4.1: the acting party, nested when it acts for another actor. */
  act?: Record<string, unknown>
  /** Lifetime in milliseconds; default the access-token lifetime. */
  ttlMs?: number
  /** The latest `exp` allowed, in seconds (an exchanged token never outlives its subject token). */
  notAfterS?: number
}

/** RS256's WebCrypto algorithm (the key was imported with its hash, SHA-256). */
const RS256 = 'RSASSA-PKCS1-v1_5'

function base64urlJson(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url')
}

/** Mints access tokens. */
export class AccessTokenMinter {
  readonly #options: AccessTokenOptions
  /** The encoded protected header of the last signing key (the same for every token it signs). */
  #header = { kid: '', encoded: '' }

  constructor(options: AccessTokenOptions) {
    this.#options = options
  }

  /** Signs a token for `subject` with the active key. */
  async mint(subject: TokenSubject): Promise<MintedAccessToken> {
    return this.#sign(
      {
        client_id: subject.clientId,
        sid: subject.sessionId,
        roles: [...subject.roles],
        scope: subject.scope ?? DEFAULT_USER_SCOPE,
      },
      subject.userId,
      this.#options.audience,
      this.#options.ttlMs,
    )
  }

  /** Signs a token for a registered client (see ClientTokenClaims) with the active key. */
  async mintForClient(claims: ClientTokenClaims): Promise<MintedAccessToken> {
    return this.#sign(
      {
        client_id: claims.clientId,
        ...(claims.sessionId === undefined ? {} : { sid: claims.sessionId }),
        ...(claims.roles === undefined ? {} : { roles: [...claims.roles] }),
        scope: claims.scope,
        ...(claims.act === undefined ? {} : { act: claims.act }),
      },
      claims.subject,
      claims.audience,
      claims.ttlMs ?? this.#options.ttlMs,
      claims.notAfterS,
    )
  }

  async #sign(
    payload: Record<string, unknown>,
    subject: string,
    audience: string | string[],
    ttlMs: number,
    notAfterS?: number,
  ): Promise<MintedAccessToken> {
    const { keys, issuer, now } = this.#options
    const signer = keys.signingKey()
    // Millisecond precision (NumericDate may be fractional): verifiers can then tell a token minted just
    // after a user-wide revocation from one minted just before it, within the same second.
    const issuedAtMs = now()
    const iat = issuedAtMs / 1000
    const issuedAtS = Math.floor(iat)
    const exp = Math.min(issuedAtS + Math.floor(ttlMs / 1000), notAfterS ?? Infinity)
    const jti = randomUUID()
    if (this.#header.kid !== signer.kid) {
      const header = { alg: SIGNING_ALGORITHM, typ: ACCESS_TOKEN_TYPE, kid: signer.kid }
      this.#header = { kid: signer.kid, encoded: base64urlJson(header) }
    }
    const claims = { ...payload, iss: issuer, sub: subject, aud: audience, iat, exp, jti }
    const input = `${this.#header.encoded}.${base64urlJson(claims)}`
    const signature = Buffer.from(await webcrypto.subtle.sign(RS256, signer.key, Buffer.from(input)))
    return { token: `${input}.${signature.toString('base64url')}`, jti, expiresIn: exp - issuedAtS }
  }
}
