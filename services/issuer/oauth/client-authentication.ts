/**
 * Who is calling an OAuth endpoint: client authentication per RFC 6749 §2.3 and RFC 7523 §2.2. A client
 * proves itself by one method per request: its secret in HTTP Basic (`client_secret_basic`, id and secret
 * form-urlencoded first, RFC 6749 §2.3.1) or in the form (`client_secret_post`), or a JWT signed with its
 * private key (`private_key_jwt`: `iss` = `sub` = its id, `aud` the issuer or the endpoint, `exp`, a `jti`
 * used once). Every attempt counts in the login throttle (per client and address, per address) until it
 * succeeds, so guessing a secret is slowed like guessing a password.
 */
import type { FastifyRequest } from 'fastify'
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  type JWTVerifyGetKey,
  jwtVerify,
} from 'jose'
import { KeygateError } from '../../../lib/errors.js'
import { sameSecret } from '../../../lib/secrets.js'
import type { LoginThrottle } from '../login-throttle.js'
import type { ClientRecord, ClientStore } from '../store/types.js'
import { CLIENT_ASSERTION_ALGORITHMS, clientSecretHash } from './clients.js'
import { invalidRequest, oauthError, type OAuthForm, single } from './form.js'

export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
/** Longest a client assertion may still be valid when presented, in milliseconds (5 min). */
export const MAX_ASSERTION_LIFETIME_MS = 5 * 60_000
/** Clock skew allowed on a client assertion's `exp`, `nbf` and `iat`, in seconds. */
const ASSERTION_CLOCK_TOLERANCE_S = 30
/** Longest client id looked up, in characters (generated ids are far shorter). */
const MAX_CLIENT_ID_LENGTH = 128
/** How long a client's `jwks_uri` may take to answer, in milliseconds. */
const JWKS_URI_TIMEOUT_MS = 5_000

export interface ClientAuthenticationOptions {
  store: ClientStore
  throttle: Pick<LoginThrottle, 'attempt'>
  /** The issuer identifier, an `aud` every assertion may name. */
  issuer: string
  /** The token endpoint's URL, an `aud` every assertion may name (RFC 7523 §3). */
  tokenEndpoint: string
  now: () => number
}

/** What the request presents, before anything is checked. */
type Presented =
  | { method: 'basic' | 'post'; clientId: string; secret: string }
  | { method: 'jwt'; clientId: string; assertion: string }

/** A verification key set per `jwks_uri`, kept so its cache and cooldown work across requests. */
const MAX_REMOTE_KEY_SETS = 1000

/** Authenticates the clients of the OAuth endpoints (see the file comment). */
export class ClientAuthentication {
  readonly #o: ClientAuthenticationOptions
  readonly #remoteKeySets = new Map<string, JWTVerifyGetKey>()

  constructor(options: ClientAuthenticationOptions) {
    this.#o = options
  }

  /**
   * The authenticated client of a request to `endpoint` (its URL, an accepted assertion `aud`). Throws
   * `invalid_client` (401), `invalid_request` for two methods at once, or 429 while throttled.
   */
  async authenticate(request: FastifyRequest, form: OAuthForm, endpoint: string): Promise<ClientRecord> {
    const presented = presentedCredentials(request.headers.authorization, form)
    const failed = (reason: string) => this.#refused(request, presented, reason)
    if (presented.clientId.length > MAX_CLIENT_ID_LENGTH) throw failed('client id too long')
    let attempt
    try {
      attempt = await this.#o.throttle.attempt(`oauth-client ${presented.clientId}`, request.ip)
    } catch (err) {
      if (err instanceof KeygateError && err.code === 'KG_LOGIN_THROTTLED') {
        throw oauthError('KG_OAUTH_CLIENT_THROTTLED', undefined, err.headers)
      }
      throw err
    }
    const client = await this.#o.store.findClient(presented.clientId)
    if (presented.method === 'jwt') {
      if (!client || client.disabledAt !== null || client.authMethod !== 'private_key_jwt') {
        throw failed('unknown, disabled or not a private_key_jwt client')
      }
      const reason = await this.#checkAssertion(client, presented.assertion, endpoint)
      if (reason !== undefined) throw failed(reason)
    } else {
      // Compared even when there is no such client, so the answer takes as long either way.
      const expected = client?.secretHash ?? clientSecretHash('')
      const matches = sameSecret(clientSecretHash(presented.secret), expected)
      if (!client || !matches || client.disabledAt !== null || client.authMethod !== 'client_secret') {
        throw failed('unknown client, wrong secret or disabled')
      }
    }
    await attempt.succeeded()
    return client
  }

  /** Logs a refused authentication (the client id and why, never what was presented) and builds its error. */
  #refused(request: FastifyRequest, presented: Presented, reason: string): KeygateError {
    request.log.info(
      { clientId: presented.clientId.slice(0, MAX_CLIENT_ID_LENGTH), method: presented.method, reason },
      'client authentication refused',
    )
    return oauthError(
      'KG_OAUTH_INVALID_CLIENT',
      undefined,
      presented.method === 'basic' ? { 'www-authenticate': 'Basic realm="keygate", charset="UTF-8"' } : {},
    )
  }

  /** Why the assertion is refused, or undefined when it proves the client (and its `jti` is now used). */
  async #checkAssertion(
    client: ClientRecord,
    assertion: string,
    endpoint: string,
  ): Promise<string | undefined> {
    const { issuer, tokenEndpoint, now } = this.#o
    const keys = this.#keysOf(client)
    if (!keys) return 'no keys registered'
    let payload
    try {
      ;({ payload } = await jwtVerify(assertion, keys, {
        algorithms: CLIENT_ASSERTION_ALGORITHMS,
        issuer: client.id,
        subject: client.id,
        audience: [...new Set([issuer, tokenEndpoint, endpoint])],
        requiredClaims: ['exp', 'jti'],
        clockTolerance: ASSERTION_CLOCK_TOLERANCE_S,
        currentDate: new Date(now()),
      }))
    } catch (err) {
      return `assertion refused (${(err as { code?: string }).code ?? 'invalid'})`
    }
    const expiresAtMs = (payload.exp as number) * 1000
    if (expiresAtMs - now() > MAX_ASSERTION_LIFETIME_MS) return 'assertion lives too long'
    const jti = payload.jti
    if (typeof jti !== 'string' || jti.length === 0 || jti.length > 256) return 'assertion jti unusable'
    const fresh = await this.#o.store.useAssertionId(
      client.id,
      jti,
      expiresAtMs + ASSERTION_CLOCK_TOLERANCE_S * 1000,
      now(),
    )
    return fresh ? undefined : 'assertion replayed'
  }

  #keysOf(client: ClientRecord): JWTVerifyGetKey | undefined {
    if (client.jwks) return createLocalJWKSet(client.jwks as Parameters<typeof createLocalJWKSet>[0])
    if (!client.jwksUri) return undefined
    const id = `${client.id} ${client.jwksUri}`
    let keySet = this.#remoteKeySets.get(id)
    if (!keySet) {
      if (this.#remoteKeySets.size >= MAX_REMOTE_KEY_SETS) this.#remoteKeySets.clear()
      keySet = createRemoteJWKSet(new URL(client.jwksUri), { timeoutDuration: JWKS_URI_TIMEOUT_MS })
      this.#remoteKeySets.set(id, keySet)
    }
    return keySet
  }
}

/**
 * The one authentication method a request presents (RFC 6749 §2.3: a client uses one per request). For a
 * client assertion the id comes from its unverified `sub` (checked against the form's `client_id` if any),
 * only to find the client whose keys then verify it.
 */
function presentedCredentials(authorization: string | undefined, form: OAuthForm): Presented {
  const formId = single(form, 'client_id')
  const formSecret = single(form, 'client_secret')
  const assertionType = single(form, 'client_assertion_type')
  const assertion = single(form, 'client_assertion')
  const found: Presented[] = []
  if (authorization !== undefined) {
    const match = /^basic +([A-Za-z0-9+/=]+) *$/i.exec(authorization)
    const decoded = match ? Buffer.from(match[1]!, 'base64').toString('utf8') : ''
    const colon = decoded.indexOf(':')
    if (colon < 1) throw invalidClient('The Authorization header is not HTTP Basic client credentials')
    let clientId: string
    let secret: string
    try {
      clientId = decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' '))
      secret = decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, ' '))
    } catch {
      throw invalidClient('The Basic credentials are not form-urlencoded')
    }
    if (formId !== undefined && formId !== clientId)
      throw invalidRequest('client_id differs from the Basic one')
    found.push({ method: 'basic', clientId, secret })
  }
  if (formSecret !== undefined) {
    if (formId === undefined) throw invalidRequest('client_secret needs client_id')
    found.push({ method: 'post', clientId: formId, secret: formSecret })
  }
  if (assertion !== undefined || assertionType !== undefined) {
    if (assertionType !== CLIENT_ASSERTION_TYPE || assertion === undefined) {
      throw invalidRequest(`client_assertion needs client_assertion_type ${CLIENT_ASSERTION_TYPE}`)
    }
    const clientId = assertionSubject(assertion)
    if (formId !== undefined && formId !== clientId)
      throw invalidClient('client_id differs from the assertion')
    found.push({ method: 'jwt', clientId, assertion })
  }
  if (found.length > 1) throw invalidRequest('Use one client authentication method per request')
  if (found.length === 0) throw invalidClient('Client authentication is required')
  return found[0]!
}

/** The unverified `sub` of a client assertion; its header must name an asymmetric algorithm. */
function assertionSubject(assertion: string): string {
  try {
    const { alg } = decodeProtectedHeader(assertion)
    if (typeof alg !== 'string' || !CLIENT_ASSERTION_ALGORITHMS.includes(alg)) {
      throw invalidClient('The client assertion must be signed with an asymmetric algorithm')
    }
    const { sub } = decodeJwt(assertion)
    if (typeof sub !== 'string' || sub.length === 0) throw invalidClient('The client assertion has no sub')
    return sub
  } catch (err) {
    if (err instanceof KeygateError) throw err
    throw invalidClient('The client assertion is not a JWT')
  }
}

function invalidClient(description: string): KeygateError {
  return oauthError('KG_OAUTH_INVALID_CLIENT', description)
}
