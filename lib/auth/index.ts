/**
 * @keygate/fastify-auth: keygate's verification plugin. Everything keygate's own components use from it comes
 * through here, as it does for any other Fastify app (see README.md).
 */
export {
  auth,
  type AuthContext,
  type AuthPluginOptions,
  type OperationsDecorators,
  type JwksSettings,
  type TrustedGateway,
} from './plugin.js'
export { TokenVerifier, type TokenProfile } from './verifier.js'
export { JwksCache } from './jwks-cache.js'
export { type RevocableIdentity, RevocationSet } from './revocation-set.js'
export { RevocationFeed, type FeedState } from './revocation-feed.js'
export * from './feed-protocol.js'
export { importVerificationKey } from './jwk.js'
export { isSupportedAlgorithm } from './algorithms.js'
export { claimAt, claimPath, type ClaimPath } from './claims.js'
export {
  AUTH_ERRORS,
  defineErrors,
  type ErrorCatalogue,
  type ErrorCode,
  type ErrorSpec,
  KeygateError,
  type KeygateErrorOptions,
} from './errors.js'
export { ASSERTION_ALGORITHM, ASSERTION_HEADER, ASSERTION_TYPE, GATEWAY_JWKS_PATH } from './assertion.js'
export { type CounterCell, CounterCells, KeyedCells } from './counter-cells.js'
export { readCappedBody } from './capped-body.js'
export type {
  AuthMode,
  AuthRequirements,
  Identity,
  KeySource,
  TrustedIssuer,
  VerificationKey,
} from './types.js'
