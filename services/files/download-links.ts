/**
 * One-time download links: an HS256 JWT signed with files' own secret through @fastify/jwt (namespace
 * `download`), so files verifies a link without calling anyone. Its claims bind it to one owner (`sub`),
 * one file (`file`) and that file's version at issue time (`fid`); `jti` makes it single-use (see
 * FileStore.spendLink) and `exp` short-lived. Its own `iss` (FILES_URL), `aud` and `typ` mean no access
 * token verifier accepts it, and it accepts no access token.
 */
import { randomUUID } from 'node:crypto'
import fastifyJwt, { type JWT } from '@fastify/jwt'
import type { FastifyInstance } from 'fastify'
import type { Identity, RevocableIdentity } from '@keygate/fastify-auth'
import { KeygateError } from '../../lib/errors.js'

/** JOSE `typ` of a download link. */
export const DOWNLOAD_LINK_TYPE = 'kg-download+jwt'
/** `aud` of a download link. */
export const DOWNLOAD_LINK_AUDIENCE = 'files-download'
export const DOWNLOAD_LINK_ALGORITHM = 'HS256'
/** @fastify/jwt namespace of the link signer. */
export const DOWNLOAD_JWT_NAMESPACE = 'download'
/** Largest link token looked at, in characters; a real one is about 400. */
export const MAX_LINK_TOKEN_CHARS = 2048

/** What a verified link grants. */
export interface DownloadGrant {
  owner: string
  /** The identity the link was issued to: the link dies with its revocation (logout, role change, …). */
  issuedTo: RevocableIdentity
  file: string
  /** The file version the link was issued for. */
  fileId: string
  jti: string
  /** Milliseconds since the epoch. */
  expiresAt: number
}

export interface DownloadLinksOptions {
  secret: string
  /** `iss` of links: files' own URL. */
  issuer: string
  ttlMs: number
  now: () => number
}

const invalid = (message?: string) => new KeygateError('KG_LINK_INVALID', message ? { message } : {})

/** The one translation of @fastify/jwt (fast-jwt) errors: expiry is "gone", anything else "invalid". */
function linkError(err: unknown): KeygateError {
  return (err as { code?: string }).code === 'FAST_JWT_EXPIRED' ? new KeygateError('KG_LINK_GONE') : invalid()
}

const isNonEmptyString = (v: unknown): v is string => typeof v === 'string' && v.length > 0

/** Issues and verifies download links. Create with `registerDownloadLinks()`. */
export class DownloadLinks {
  readonly #jwt: JWT
  readonly #options: DownloadLinksOptions

  constructor(jwt: JWT, options: DownloadLinksOptions) {
    this.#jwt = jwt
    this.#options = options
  }

  /**
   * A link token for the current version of one of `identity`'s files (owned by its principal), and its
   * lifetime in seconds. It names the access token it was issued on (`at_*`, as a gateway assertion does), so
   * a revocation of that token, its session or its user reaches the link too.
   */
  issue(identity: Identity, file: { name: string; id: string }): { token: string; expiresIn: number } {
    const nowS = Math.floor(this.#options.now() / 1000)
    const expiresIn = Math.floor(this.#options.ttlMs / 1000)
    const token = this.#jwt.sign({
      sub: identity.principal,
      at_iss: identity.issuer,
      at_sub: identity.subject,
      at_jti: identity.tokenId,
      at_kid: identity.keyId,
      at_iat: identity.issuedAt,
      ...(identity.sessionId === undefined ? {} : { at_sid: identity.sessionId }),
      file: file.name,
      fid: file.id,
      jti: randomUUID(),
      iat: nowS,
      exp: nowS + expiresIn,
    })
    return { token, expiresIn }
  }

  /**
   * Verifies a link token's signature, `iss`, `aud`, `typ` and expiry.
   * @throws KeygateError KG_LINK_INVALID (401) or, once expired, KG_LINK_GONE (410)
   */
  verify(token: string): DownloadGrant {
    if (token.length > MAX_LINK_TOKEN_CHARS) throw invalid()
    let claims: Record<string, unknown>
    try {
      claims = this.#jwt.verify(token, { clockTimestamp: this.#options.now() })
    } catch (err) {
      throw linkError(err)
    }
    const { sub, file, fid, jti, exp, at_iss, at_sub, at_jti, at_kid, at_iat, at_sid } = claims
    if (
      !isNonEmptyString(sub) ||
      !isNonEmptyString(file) ||
      !isNonEmptyString(fid) ||
      !isNonEmptyString(jti) ||
      !isNonEmptyString(at_iss) ||
      !isNonEmptyString(at_sub) ||
      !isNonEmptyString(at_jti) ||
      !isNonEmptyString(at_kid) ||
      (at_sid !== undefined && !isNonEmptyString(at_sid))
    ) {
      throw invalid()
    }
    if (typeof exp !== 'number' || typeof at_iat !== 'number') throw invalid()
    return {
      owner: sub,
      issuedTo: {
        issuer: at_iss,
        subject: at_sub,
        tokenId: at_jti,
        keyId: at_kid,
        issuedAt: at_iat,
        sessionId: at_sid,
      },
      file,
      fileId: fid,
      jti,
      expiresAt: exp * 1000,
    }
  }
}

/**
 * Registers @fastify/jwt on `app` under the `download` namespace, every check fixed here, and returns
 * the links built on it.
 * @example
 * const links = await registerDownloadLinks(app, { secret, issuer: config.FILES_URL, ttlMs: 60_000, now })
 */
export async function registerDownloadLinks(
  app: FastifyInstance,
  options: DownloadLinksOptions,
): Promise<DownloadLinks> {
  await app.register(fastifyJwt, {
    secret: options.secret,
    namespace: DOWNLOAD_JWT_NAMESPACE,
    // Per-request helpers of the namespace are unused: links are read from the path, not a header.
    decoratorName: 'downloadLink',
    sign: {
      algorithm: DOWNLOAD_LINK_ALGORITHM,
      header: { alg: DOWNLOAD_LINK_ALGORITHM, typ: DOWNLOAD_LINK_TYPE },
      iss: options.issuer,
      aud: DOWNLOAD_LINK_AUDIENCE,
    },
    verify: {
      algorithms: [DOWNLOAD_LINK_ALGORITHM],
      allowedIss: options.issuer,
      allowedAud: DOWNLOAD_LINK_AUDIENCE,
      checkTyp: DOWNLOAD_LINK_TYPE,
      requiredClaims: ['iss', 'aud', 'sub', 'file', 'fid', 'jti', 'iat', 'exp'],
    },
  })
  // With a namespace, @fastify/jwt decorates `app.jwt` as a map of namespaces; its types do not say so
  // unless declared globally, which would retype `app.jwt` for every other component.
  const jwt = (app as unknown as { jwt: Record<string, JWT> }).jwt[DOWNLOAD_JWT_NAMESPACE]
  if (!jwt) throw new Error('keygate files: @fastify/jwt did not register the download namespace')
  return new DownloadLinks(jwt, options)
}
