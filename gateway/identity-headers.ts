/**
 * Identity hygiene and forwarding. Every client-sent header in keygate's identity namespace (`x-keygate-*`)
 * and every configured identity header (`x-user-id`, …) is dropped on every route, whatever its auth mode;
 * then the gateway attaches what the route's `forward` policy asks for, from the verified identity only.
 */
import type { Identity } from '../lib/auth/types.js'
import {
  ASSERTION_HEADER,
  IDENTITY_HEADER_PREFIX,
  ROLES_HEADER,
  SCOPES_HEADER,
  SUBJECT_HEADER,
} from '../lib/identity/constants.js'
import type { AssertionSigner } from './assertion-signer.js'
import type { GatewayRoute } from './route-table.js'

/** Headers sent upstream, as undici takes them. */
export type UpstreamHeaders = Record<string, string | string[]>

/** Characters a header value may not carry as is (anything but printable ASCII). */
const NOT_PRINTABLE_ASCII = /[^\x20-\x7e]/g

/** Decides which client headers are identity, and attaches the gateway's own. */
export class IdentityForwarding {
  readonly #strip: ReadonlySet<string>
  readonly #signer: AssertionSigner

  /** `stripHeaders`: lower-case names of identity headers besides the `x-keygate-*` namespace. */
  constructor(stripHeaders: readonly string[], signer: AssertionSigner) {
    this.#strip = new Set(stripHeaders)
    this.#signer = signer
  }

  /** True for a (lower-case) header name a client may never send upstream. */
  isIdentityHeader(name: string): boolean {
    return name.startsWith(IDENTITY_HEADER_PREFIX) || this.#strip.has(name)
  }

  /**
   * Adds the identity a route forwards. `clientAuthorization` is relayed on a `none` route whose policy asks
   * for the token explicitly (the issuer's `/auth/logout-all` reads it); an anonymous request on an optional
   * route gets nothing identity-like.
   */
  attach(
    headers: UpstreamHeaders,
    route: GatewayRoute,
    identity: Identity | null,
    clientAuthorization: string | undefined,
  ): void {
    const forward = route.forward
    if (identity === null) {
      if (forward.token && route.auth.mode === 'none' && clientAuthorization !== undefined) {
        headers.authorization = clientAuthorization
      }
      return
    }
    if (forward.token && identity.token !== undefined) headers.authorization = `Bearer ${identity.token}`
    if (forward.assertion)
      headers[ASSERTION_HEADER] = this.#signer.assertionFor(identity, route.upstream.name)
    if (forward.subject) headers[SUBJECT_HEADER] = headerSafe(identity.subject)
    if (forward.roles) headers[ROLES_HEADER] = headerSafe(identity.roles.join(','))
    if (forward.scopes) headers[SCOPES_HEADER] = headerSafe(identity.scopes.join(' '))
    for (const claim of forward.claims) {
      const value = claimAt(identity.claims, claim.path)
      if (value !== undefined) headers[claim.header] = headerSafe(JSON.stringify(value))
    }
  }
}

function claimAt(claims: Readonly<Record<string, unknown>>, path: readonly string[]): unknown {
  let value: unknown = claims
  for (const key of path) {
    if (typeof value !== 'object' || value === null || !Object.hasOwn(value, key)) return undefined
    value = (value as Record<string, unknown>)[key]
  }
  return value
}

/**
 * A header value is printable ASCII: anything else is written as a JSON `\uXXXX` escape, so a claim header
 * stays valid JSON and no value can smuggle a control character.
 */
function headerSafe(value: string): string {
  return value.replace(NOT_PRINTABLE_ASCII, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}
