/**
 * Relaying identity from one service to another on the caller's behalf (orders → profile). Only what the
 * next service can verify itself is relayed: the caller's own access token. A gateway assertion is never
 * passed on — it is audience-bound to the service it was minted for, and the next service would rightly
 * refuse it — and plain identity headers (`x-keygate-subject`, `x-user-id`) prove nothing, so none are
 * built here. A caller whose identity arrived only as an assertion has nothing relayable.
 */
import type { Identity } from '@keygate/fastify-auth'

/** Header that carries the request id across hops, so one trace spans them. */
export const REQUEST_ID_HEADER = 'x-request-id'

/** Headers for a call made on a caller's behalf. */
export interface RelayHeaders {
  authorization: string
  [REQUEST_ID_HEADER]?: string
}

/** True when the caller presented a credential another service can verify for itself. */
export function canRelay(identity: Identity): boolean {
  return identity.source === 'token' && typeof identity.token === 'string' && identity.token.length > 0
}

/**
 * The headers that carry `identity` to another keygate service, or `undefined` when there is nothing
 * verifiable to relay (the caller came with a gateway assertion only). Callers must then not make the
 * call at all rather than make it with weaker identity.
 * @example
 * const headers = relayHeaders(request.identity, request.id)
 * if (!headers) throw new KeygateError('KG_PROFILE_UNAVAILABLE')
 * await pool.request({ method: 'GET', path: '/me', headers })
 */
export function relayHeaders(identity: Identity, requestId?: string): RelayHeaders | undefined {
  if (!canRelay(identity)) return undefined
  return {
    authorization: `Bearer ${identity.token}`,
    ...(requestId === undefined ? {} : { [REQUEST_ID_HEADER]: requestId }),
  }
}
