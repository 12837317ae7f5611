/**
 * The wire contract of identity forwarding, shared by the gateway (which signs), the services (which verify)
 * and the issuer (which mints the access tokens being relayed). What a verifier needs to accept a gateway
 * assertion (its header, type, algorithm and key path) is defined by the verification plugin and re-exported here.
 */

export {
  ASSERTION_ALGORITHM,
  ASSERTION_HEADER,
  ASSERTION_TYPE,
  GATEWAY_JWKS_PATH,
} from '@keygate/fastify-auth'

/** Every header in this namespace is identity: a client can never send one through the gateway. */
export const IDENTITY_HEADER_PREFIX = 'x-keygate-'

/** JOSE `typ` of an access token (RFC 9068). */
export const ACCESS_TOKEN_TYPE = 'at+jwt'

/** Default lifetime of a gateway assertion, in seconds. */
export const DEFAULT_ASSERTION_TTL_S = 60

/** Default audience of keygate access tokens (the API behind the gateway). */
export const DEFAULT_API_AUDIENCE = 'keygate-api'

/** Plain convenience headers the gateway may add after stripping the client's (never trusted by services). */
export const SUBJECT_HEADER = 'x-keygate-subject'
export const ROLES_HEADER = 'x-keygate-roles'
export const SCOPES_HEADER = 'x-keygate-scopes'
/** Prefix of headers carrying selected claims: `x-keygate-claim-<name>`, JSON-encoded values. */
export const CLAIM_HEADER_PREFIX = 'x-keygate-claim-'

/**
 * Claims of a gateway assertion beyond the registered ones (`iss` = gateway URL, `aud` = upstream name,
 * `sub`, `iat`, `exp`, `jti`): the caller's `roles`, `scope`, `sid`, `client_id`, and the access token it
 * was derived from (`at_jti`, `at_iat`, `at_iss`, `at_kid`) so verifiers apply revocations to it as to
 * the token itself.
 */
export interface AssertionClaims {
  iss: string
  aud: string
  sub: string
  iat: number
  exp: number
  jti: string
  roles: string[]
  scope: string
  sid?: string
  client_id?: string
  at_jti: string
  at_iat: number
  at_iss: string
  at_kid: string
}
