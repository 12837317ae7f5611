/**
 * The gateway's identity assertions: a compact JWS (EdDSA, `typ: kg-assertion+jwt`) per caller and upstream,
 * signed with the gateway's own Ed25519 key and published on its JWKS. Ed25519 signs in tens of microseconds,
 * and an assertion is reused for the same verified token and audience until shortly before it expires, so the
 * gateway signs about once per token, upstream and assertion lifetime rather than per request. Assertions are
 * kept beside the identity the verifier holds for the token (the verifier's cache returns the same object
 * for the same token): no key to build per request, no cache of their own to turn over, and they go when
 * the verifier lets the identity go.
 */
import {
  createHash,
  createPrivateKey,
  generateKeyPairSync,
  type JsonWebKey,
  type KeyObject,
  randomUUID,
  sign,
} from 'node:crypto'
import { readFile, stat } from 'node:fs/promises'
import { createFileOnce } from '../lib/atomic-file.js'
import type { Identity } from '@keygate/fastify-auth'
import {
  ASSERTION_ALGORITHM,
  ASSERTION_TYPE,
  type AssertionClaims,
  DEFAULT_ASSERTION_TTL_S,
} from '../lib/identity/constants.js'

/** A cached assertion is replaced once it has less than this left to live, in seconds. */
export const ASSERTION_RENEW_BEFORE_S = 10
/** `Cache-Control: max-age` of the gateway's JWKS, in seconds. */
export const GATEWAY_JWKS_MAX_AGE_S = 300

/** The public half of the assertion key, as published. */
export interface PublicJwk {
  kty: 'OKP'
  crv: 'Ed25519'
  x: string
  kid: string
  alg: typeof ASSERTION_ALGORITHM
  use: 'sig'
}

export interface AssertionSignerOptions {
  /** The key file (JWK with `d`, mode 0600); created when missing. */
  keyFile: string
  /** `iss` of assertions: the gateway's URL. */
  issuer: string
  /** Assertion lifetime, in seconds. Default DEFAULT_ASSERTION_TTL_S. */
  ttlS?: number
  /** Milliseconds since the epoch. */
  now?: () => number
}

interface IssuedAssertion {
  readonly audience: string
  readonly jws: string
  readonly exp: number
}

/** Signs (and remembers) the gateway's assertions. */
export class AssertionSigner {
  readonly kid: string
  /** The JWKS document served at GATEWAY_JWKS_PATH. */
  readonly jwks: { keys: PublicJwk[] }
  readonly #privateKey: KeyObject
  readonly #issuer: string
  readonly #ttlS: number
  readonly #now: () => number
  readonly #encodedHeader: string
  /** The assertions of each identity, one per audience it went to (a handful at most: one per upstream). */
  readonly #issued = new WeakMap<Identity, IssuedAssertion[]>()

  private constructor(privateKey: KeyObject, publicJwk: PublicJwk, options: AssertionSignerOptions) {
    this.#privateKey = privateKey
    this.kid = publicJwk.kid
    this.jwks = { keys: [publicJwk] }
    this.#issuer = options.issuer
    this.#ttlS = options.ttlS ?? DEFAULT_ASSERTION_TTL_S
    this.#now = options.now ?? Date.now
    this.#encodedHeader = base64url(
      JSON.stringify({ alg: ASSERTION_ALGORITHM, typ: ASSERTION_TYPE, kid: this.kid }),
    )
  }

  /**
   * Loads the key file, generating it on first start; several gateway processes sharing the file agree on
   * one key.
   * @example
   * const signer = await AssertionSigner.open({ keyFile: 'keys/gateway-assertion-key.json', issuer: url })
   */
  static async open(options: AssertionSignerOptions): Promise<AssertionSigner> {
    const privateJwk = await loadOrCreateKey(options.keyFile)
    let privateKey: KeyObject
    try {
      privateKey = createPrivateKey({ key: privateJwk, format: 'jwk' })
    } catch (err) {
      throw new Error(`GATEWAY_ASSERTION_KEY_FILE ${options.keyFile}: not an Ed25519 private JWK`, {
        cause: err,
      })
    }
    if (privateKey.asymmetricKeyType !== 'ed25519' || typeof privateJwk.x !== 'string') {
      throw new Error(`GATEWAY_ASSERTION_KEY_FILE ${options.keyFile}: not an Ed25519 private JWK`)
    }
    const x = privateJwk.x
    const publicJwk: PublicJwk = {
      kty: 'OKP',
      crv: 'Ed25519',
      x,
      kid: thumbprint(x),
      alg: ASSERTION_ALGORITHM,
      use: 'sig',
    }
    return new AssertionSigner(privateKey, publicJwk, options)
  }

  /** The assertion of `identity` for `audience` (an upstream name), reused while it has time left. */
  assertionFor(identity: Identity, audience: string): string {
    const nowS = Math.floor(this.#now() / 1000)
    let issued = this.#issued.get(identity)
    const index = issued === undefined ? -1 : issued.findIndex((a) => a.audience === audience)
    if (index >= 0) {
      const { jws, exp } = issued![index]!
      // Capped by the token's own expiry, a fresh assertion would expire no later: keep the one we have.
      if (exp - nowS > ASSERTION_RENEW_BEFORE_S || (exp === identity.expiresAt && nowS < exp)) return jws
    }
    const exp = Math.min(nowS + this.#ttlS, identity.expiresAt)
    const jws = this.sign({
      iss: this.#issuer,
      aud: audience,
      sub: identity.subject,
      iat: nowS,
      exp,
      jti: randomUUID(),
      roles: [...identity.roles],
      scope: identity.scopes.join(' '),
      ...(identity.sessionId === undefined ? {} : { sid: identity.sessionId }),
      ...(identity.clientId === undefined ? {} : { client_id: identity.clientId }),
      at_jti: identity.tokenId,
      at_iat: identity.issuedAt,
      at_iss: identity.issuer,
      at_kid: identity.keyId,
    })
    if (issued === undefined) this.#issued.set(identity, (issued = []))
    issued[index >= 0 ? index : issued.length] = { audience, jws, exp }
    return jws
  }

  /** Signs claims as a compact JWS with the gateway's key. */
  sign(claims: AssertionClaims): string {
    const input = `${this.#encodedHeader}.${base64url(JSON.stringify(claims))}`
    return `${input}.${sign(null, Buffer.from(input), this.#privateKey).toString('base64url')}`
  }
}

/** RFC 7638 thumbprint of an Ed25519 public key: SHA-256 of its required members in lexical order. */
function thumbprint(x: string): string {
  return createHash('sha256').update(`{"crv":"Ed25519","kty":"OKP","x":"${x}"}`).digest('base64url')
}

function base64url(text: string): string {
  return Buffer.from(text).toString('base64url')
}

async function loadOrCreateKey(file: string): Promise<JsonWebKey> {
  try {
    return await readKey(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  const { privateKey } = generateKeyPairSync('ed25519')
  const jwk = privateKey.export({ format: 'jwk' })
  // A concurrent starter either wins or reads the winner's complete file, never a half-written one.
  await createFileOnce(file, `${JSON.stringify(jwk)}\n`)
  return readKey(file)
}

async function readKey(file: string): Promise<JsonWebKey> {
  const text = await readFile(file, 'utf8')
  if (process.platform !== 'win32' && ((await stat(file)).mode & 0o077) !== 0) {
    throw new Error(
      `GATEWAY_ASSERTION_KEY_FILE ${file}: a private key must not be readable by others (chmod 600)`,
    )
  }
  try {
    return JSON.parse(text) as JsonWebKey
  } catch {
    throw new Error(`GATEWAY_ASSERTION_KEY_FILE ${file}: not valid JSON`)
  }
}
