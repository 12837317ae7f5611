/**
 * Access tokens per RFC 9068, signed by the key set's active key. They carry what services need to decide
 * (subject, session, roles, scope) and nothing else: no e-mail or other personal data.
 */
import { randomUUID } from 'node:crypto'
import { SignJWT } from 'jose'
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

/** Mints access tokens. */
export class AccessTokenMinter {
  readonly #options: AccessTokenOptions

  constructor(options: AccessTokenOptions) {
    this.#options = options
  }

  /** Signs a token for `subject` with the active key. */
  async mint(subject: TokenSubject): Promise<MintedAccessToken> {
    const { keys, issuer, audience, ttlMs, now } = this.#options
    const signer = keys.signingKey()
    // Millisecond precision (NumericDate may be fractional): verifiers can then tell a token minted just
    // after a user-wide revocation from one minted just before it, within the same second.
    const issuedAtMs = now()
    const iat = issuedAtMs / 1000
    const expiresIn = Math.floor(ttlMs / 1000)
    const jti = randomUUID()
    const token = await new SignJWT({
      client_id: subject.clientId,
      sid: subject.sessionId,
      roles: [...subject.roles],
      scope: subject.scope ?? DEFAULT_USER_SCOPE,
    })
      .setProtectedHeader({ alg: SIGNING_ALGORITHM, typ: ACCESS_TOKEN_TYPE, kid: signer.kid })
      .setIssuer(issuer)
      .setSubject(subject.userId)
      .setAudience(audience)
      .setIssuedAt(iat)
      .setExpirationTime(Math.floor(iat) + expiresIn)
      .setJti(jti)
      .sign(signer.key)
    return { token, jti, expiresIn }
  }
}
