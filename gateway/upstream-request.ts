/**
 * What an upstream receives, decided in one place: which of the client's headers cross, and what identity the
 * gateway attaches. Nothing else in the gateway adds, drops or rewrites an upstream request header.
 *
 * 1. Strip, on every route whatever its auth mode: hop-by-hop headers and those the client's `Connection`
 *    lists (hop-by-hop.ts); the forwarding chain, the request id, `Host` (the upstream's) and `Expect`
 *    (answered by Node itself); `Authorization`; every identity header, i.e. the `x-keygate-*` namespace and
 *    the configured ones (`GATEWAY_STRIP_HEADERS`). Names are compared with `_` read as `-`: CGI, WSGI, PHP
 *    and Rack upstreams see `x_user_id` and `x-user-id` alike as `HTTP_X_USER_ID`.
 * 2. Rebuild the forwarding chain from what trusted hops said, and set the request id.
 * 3. Attach what the route's forward policy asks for, from the verified caller only: the assertion addressed
 *    to the upstream, the convenience headers, and the raw token only where the route opts in (a token
 *    relayed is a credential the upstream could replay elsewhere; the assertion is bound to that upstream). An anonymous request attaches nothing
 *    identity-like; a route that authenticates nobody (auth `none`) relays at most the client's own
 *    `Authorization`, as sent, when its policy asks for the token (the issuer's `/auth/logout-all` reads it).
 *
 * The client's headers are copied first and the gateway's added after, so a client can never use
 * `Connection` to remove what the gateway sets. The response side is response-headers.ts.
 */
import type { FastifyRequest } from 'fastify'
import { claimAt, claimPath, type Identity } from '@keygate/fastify-auth'
import {
  ASSERTION_HEADER,
  CLAIM_HEADER_PREFIX,
  IDENTITY_HEADER_PREFIX,
  ROLES_HEADER,
  SCOPES_HEADER,
  SUBJECT_HEADER,
} from '../lib/identity/constants.js'
import type { AssertionSigner } from './assertion-signer.js'
import { connectionListed, HOP_BY_HOP } from './hop-by-hop.js'
import { type RouteSpec, RouteTableError } from './route-file.js'

/** Headers sent upstream, as undici takes them. */
export type UpstreamHeaders = Record<string, string | string[]>

/** A claim forwarded as `x-keygate-claim-<name>`. */
export interface ClaimHeader {
  readonly header: string
  readonly path: readonly string[]
}

/** What identity a route forwards, with defaults resolved (see `forwardPolicy`). */
export interface ForwardPolicy {
  /** Relay the token: the verified caller's, or on a route that authenticates nobody, the client's as sent. */
  readonly token: boolean
  readonly assertion: boolean
  readonly subject: boolean
  readonly roles: boolean
  readonly scopes: boolean
  readonly claims: readonly ClaimHeader[]
}

/** The part of a compiled route (route-table.ts) that decides its upstream request. */
export interface UpstreamRoute {
  /** False on auth-`none` routes: nobody is authenticated there, so no caller is ever verified. */
  readonly authenticates: boolean
  readonly upstream: { readonly name: string }
  readonly forward: ForwardPolicy
}

/**
 * Resolves a route's `forward` setting: the assertion by default; the raw token and the convenience headers
 * only when asked for. `where` names the route in errors.
 * @throws RouteTableError when two claims map to one header
 */
export function forwardPolicy(spec: RouteSpec['forward'], where: string): ForwardPolicy {
  const forward = spec ?? {}
  const claims: ClaimHeader[] = []
  const headers = new Set<string>()
  for (const entry of forward.claims ?? []) {
    const claim = typeof entry === 'string' ? entry : entry.claim
    // A URL-named claim is no header name: its characters outside an HTTP token become `-`.
    const suffix = typeof entry === 'string' ? claim.replace(/[^A-Za-z0-9.-]/g, '-') : entry.header
    const header = `${CLAIM_HEADER_PREFIX}${suffix.toLowerCase()}`
    if (headers.has(header)) throw new RouteTableError(`${where}: forward.claims names ${header} twice`)
    headers.add(header)
    claims.push({ header, path: claimPath(claim) })
  }
  return {
    token: forward.token ?? false,
    assertion: forward.assertion ?? true,
    subject: forward.subject ?? false,
    roles: forward.roles ?? false,
    scopes: forward.scopes ?? false,
    claims,
  }
}

/**
 * Client headers the gateway replaces or never passes on (beside hop-by-hop and identity headers): its own
 * forwarding chain, the request id, the target host, `Expect`, and `Authorization` (relayed only by the
 * route's forward policy).
 */
const REPLACED_REQUEST_HEADERS = [
  'host',
  'expect',
  'authorization',
  'x-request-id',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-forwarded-port',
  'x-forwarded-prefix',
  'x-real-ip',
  'forwarded',
]

/** Characters a header value may not carry as is (anything but printable ASCII). */
const NOT_PRINTABLE_ASCII = /[^\x20-\x7e]/g

export interface UpstreamRequestOptions {
  /** Lower-case names of identity headers besides the `x-keygate-*` namespace (`GATEWAY_STRIP_HEADERS`). */
  identityHeaders: readonly string[]
  signer: AssertionSigner
}

/** Builds the headers of each upstream request (see the file comment). */
export class UpstreamRequestHeaders {
  /** Every exact name the client may not send upstream: one lookup per header, whatever its reason. */
  readonly #stripped: ReadonlySet<string>
  readonly #signer: AssertionSigner

  constructor(options: UpstreamRequestOptions) {
    this.#stripped = new Set(
      [...HOP_BY_HOP, ...REPLACED_REQUEST_HEADERS, ...options.identityHeaders].map(canonicalName),
    )
    this.#signer = options.signer
  }

  /**
   * The headers to send upstream for `request` on `route`, `caller` being whom the route authenticated (null
   * when nobody was).
   * @example
   * const headers = upstreamHeaders.build(request, route, await app.auth.authenticate(request, route.auth))
   */
  build(request: FastifyRequest, route: UpstreamRoute, caller: Identity | null): UpstreamHeaders {
    const incoming = request.headers
    const listed = connectionListed(incoming.connection)
    const headers: UpstreamHeaders = {}
    for (const name in incoming) {
      const canonical = canonicalName(name)
      if (
        this.#stripped.has(canonical) ||
        canonical.startsWith(IDENTITY_HEADER_PREFIX) ||
        (listed !== undefined && (listed.has(name) || listed.has(canonical)))
      ) {
        continue
      }
      const value = incoming[name]
      if (value !== undefined) headers[name] = value
    }
    // Only what trusted hops said is kept: request.ips stops at the first untrusted address.
    headers['x-forwarded-for'] =
      incoming['x-forwarded-for'] === undefined
        ? (request.raw.socket.remoteAddress ?? '')
        : request.ips!.reverse().join(', ')
    headers['x-forwarded-proto'] = request.protocol
    if (request.host !== '') headers['x-forwarded-host'] = request.host
    headers['x-request-id'] = request.id

    const forward = route.forward
    if (caller === null) {
      if (forward.token && !route.authenticates && incoming.authorization !== undefined) {
        headers.authorization = incoming.authorization
      }
      return headers
    }
    if (forward.token && caller.token !== undefined) headers.authorization = `Bearer ${caller.token}`
    if (forward.assertion) headers[ASSERTION_HEADER] = this.#signer.assertionFor(caller, route.upstream.name)
    if (forward.subject) headers[SUBJECT_HEADER] = headerSafe(caller.subject)
    if (forward.roles) headers[ROLES_HEADER] = headerSafe(caller.roles.join(','))
    if (forward.scopes) headers[SCOPES_HEADER] = headerSafe(caller.scopes.join(' '))
    for (const claim of forward.claims) {
      const value = claimAt(caller.claims, claim.path)
      if (value !== undefined) headers[claim.header] = headerSafe(JSON.stringify(value))
    }
    return headers
  }
}

/**
 * A header name as the strip list compares it: `_` read as `-`, as CGI-style upstreams read both (RFC 3875
 * §4.1.18 maps `-` to `_`, so `x_user_id` and `x-user-id` become one variable there).
 */
function canonicalName(name: string): string {
  return name.includes('_') ? name.replaceAll('_', '-') : name
}

/**
 * A header value is printable ASCII: anything else is written as a JSON `\uXXXX` escape, so a claim header
 * stays valid JSON and no value can smuggle a control character.
 */
function headerSafe(value: string): string {
  return value.replace(NOT_PRINTABLE_ASCII, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}
