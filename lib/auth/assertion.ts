/**
 * What the plugin needs to know of the gateway's identity assertions (lib/identity has the rest of the
 * forwarding contract): where a service finds one, how it is signed and typed, where its key is published.
 */

/** The gateway's signed assertion of the caller's identity, one per upstream audience. */
export const ASSERTION_HEADER = 'x-keygate-assertion'

/** JOSE `typ` of a gateway assertion; never accepted where an access token is expected, nor the reverse. */
export const ASSERTION_TYPE = 'kg-assertion+jwt'

/** Algorithm of gateway assertions: Ed25519 signs in microseconds, so assertions are cheap to mint. */
export const ASSERTION_ALGORITHM = 'EdDSA'

/** Where the gateway publishes its assertion key (outside the `/.well-known/*` routes proxied to the issuer). */
export const GATEWAY_JWKS_PATH = '/.well-known/gateway-jwks.json'
