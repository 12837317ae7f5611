export {
  auth,
  type AuthContext,
  type AuthPluginOptions,
  type JwksSettings,
  type TrustedGateway,
} from './plugin.js'
export { AuthConfigSchema, authOptionsFromConfig, feedSecret } from './config.js'
export { TokenVerifier, type TokenProfile } from './verifier.js'
export { JwksCache } from './jwks-cache.js'
export { type RevocableIdentity, RevocationSet } from './revocation-set.js'
export { RevocationFeed, type FeedState } from './revocation-feed.js'
export * from './feed-protocol.js'
export { importVerificationKey } from './jwk.js'
export type {
  AuthMode,
  AuthRequirements,
  Identity,
  KeySource,
  TrustedIssuer,
  VerificationKey,
} from './types.js'
