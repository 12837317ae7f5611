/**
 * The gateway's route table, compiled: path prefix → upstream, with the auth policy, the identity to forward,
 * a prefix rewrite, a timeout and a rate limit per route. Prefixes go into a map, so that matching costs one
 * lookup per path segment, whatever the number of routes.
 */
import type { AuthRequirements } from '@keygate/fastify-auth'
import {
  defaultRouteFile,
  readRouteFile,
  type RouteSpec,
  RouteTableError,
  validateRouteFile,
} from './route-file.js'
import { forwardPolicy, type UpstreamRoute } from './upstream-request.js'

/** Where an upstream lives: the pool's origin and a base path prepended to every forwarded path. */
export interface Upstream {
  readonly name: string
  readonly origin: string
  readonly basePath: string
}

export interface RateLimit {
  readonly max: number
  readonly windowMs: number
}

/** One compiled route; what its upstream request carries is decided by upstream-request.ts. */
export interface GatewayRoute extends UpstreamRoute {
  readonly prefix: string
  readonly upstream: Upstream
  readonly auth: AuthRequirements
  readonly timeoutMs: number
  readonly rateLimit: RateLimit
  /** The path to request upstream for a (normalised) request path this route matched. */
  targetPath(path: string): string
}

/** Settings that apply to routes which do not set their own. */
export interface RouteDefaults {
  timeoutMs: number
  rateLimit: RateLimit
}

/** The upstreams every table knows, by name, from config (ISSUER_URL, PROFILE_URL, ORDERS_URL, FILES_URL). */
export interface KnownUpstreams {
  issuer: string
  profile: string
  orders: string
  files: string
}

/** Reads, validates and compiles `file`, or the built-in table when no file is given. */
export function loadRouteTable(
  file: string | undefined,
  upstreams: KnownUpstreams,
  defaults: RouteDefaults,
): RouteTable {
  if (file === undefined) return RouteTable.compile(defaultRouteFile(), upstreams, defaults, 'default table')
  return RouteTable.compile(readRouteFile(file), upstreams, defaults, `GATEWAY_ROUTES_FILE ${file}`)
}

/** The compiled table: an exact-prefix map searched from the longest candidate prefix of a path down. */
export class RouteTable {
  readonly routes: readonly GatewayRoute[]
  readonly upstreams: ReadonlyMap<string, Upstream>
  readonly #byPrefix: Map<string, GatewayRoute>
  /** The most segments any prefix has: longer candidates of a path need no lookup. */
  readonly #maxDepth: number

  private constructor(routes: GatewayRoute[], upstreams: Map<string, Upstream>) {
    this.routes = routes
    this.upstreams = upstreams
    this.#byPrefix = new Map(routes.map((r) => [r.prefix, r]))
    this.#maxDepth = Math.max(0, ...routes.map((r) => segmentCount(r.prefix)))
  }

  /**
   * Validates a parsed route file and compiles it. `source` names the file in error messages.
   * @throws RouteTableError naming the bad entry
   */
  static compile(
    input: unknown,
    known: KnownUpstreams,
    defaults: RouteDefaults,
    source = 'route table',
  ): RouteTable {
    const spec = validateRouteFile(input, source)
    const upstreams = new Map<string, Upstream>()
    const urls: Record<string, string> = { ...known, ...spec.upstreams }
    const routes: GatewayRoute[] = []
    const seen = new Map<string, number>()
    spec.routes.forEach((route, index) => {
      const where = `${source}: routes[${index}] (prefix ${route.prefix})`
      const previous = seen.get(route.prefix)
      if (previous !== undefined) throw new RouteTableError(`${where}: duplicates routes[${previous}]`)
      seen.set(route.prefix, index)
      let upstream = upstreams.get(route.upstream)
      if (upstream === undefined) {
        const url = urls[route.upstream]
        if (url === undefined) {
          const names = Object.keys(urls).join(', ')
          throw new RouteTableError(`${where}: unknown upstream "${route.upstream}" (known: ${names})`)
        }
        upstream = parseUpstream(route.upstream, url, source)
        upstreams.set(route.upstream, upstream)
      }
      routes.push(compileRoute(route, upstream, defaults, where))
    })
    return new RouteTable(routes, upstreams)
  }

  /**
   * The route whose prefix is the longest whole-segment prefix of `path` (a normalised path, see
   * request-path.ts): `/api/profile` matches `/api/profile` and `/api/profile/x`, never `/api/profilex`.
   */
  match(path: string): GatewayRoute | undefined {
    let end = path.length
    for (let i = 1, depth = 0; i < path.length; i++) {
      if (path.charCodeAt(i) === 47 /* / */ && ++depth === this.#maxDepth) {
        end = i
        break
      }
    }
    for (;;) {
      const candidate = end === 0 ? '/' : end === path.length ? path : path.slice(0, end)
      const route = this.#byPrefix.get(candidate)
      if (route !== undefined) return route
      if (end === 0) return undefined
      end = path.lastIndexOf('/', end - 1)
    }
  }
}

function compileRoute(
  spec: RouteSpec,
  upstream: Upstream,
  defaults: RouteDefaults,
  where: string,
): GatewayRoute {
  const auth: AuthRequirements = { ...spec.auth }
  // The one place that decides a route needs no auth: the proxy route then authenticates nobody, and the
  // upstream request attaches no verified identity.
  const authenticates = auth.mode !== 'none'
  if (!authenticates && (auth.roles?.length || auth.scopes?.length || auth.issuers)) {
    throw new RouteTableError(
      `${where}: auth.roles, auth.scopes and auth.issuers need mode required or optional`,
    )
  }
  return {
    prefix: spec.prefix,
    upstream,
    auth,
    authenticates,
    forward: forwardPolicy(spec.forward, where),
    timeoutMs: spec.timeoutMs ?? defaults.timeoutMs,
    rateLimit: spec.rateLimit ?? defaults.rateLimit,
    targetPath: pathRewriter(spec.prefix, spec.rewrite, upstream.basePath),
  }
}

/** Compiles the prefix rewrite: the matched prefix is replaced, the rest of the path kept. */
function pathRewriter(
  prefix: string,
  rewrite: string | undefined,
  basePath: string,
): (path: string) => string {
  if (rewrite === undefined) return basePath === '' ? (path) => path : (path) => basePath + path
  const cut = prefix === '/' ? 0 : prefix.length
  const replacement = basePath + (rewrite === '/' ? '' : rewrite)
  const bare = replacement === '' ? '/' : replacement
  return (path) => (path.length === cut ? bare : replacement + path.slice(cut))
}

function parseUpstream(name: string, value: string, source: string): Upstream {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new RouteTableError(`${source}: upstream "${name}" has an invalid URL: ${value}`)
  }
  if (
    (url.protocol !== 'http:' && url.protocol !== 'https:') ||
    url.search !== '' ||
    url.hash !== '' ||
    url.username !== '' ||
    url.password !== ''
  ) {
    throw new RouteTableError(
      `${source}: upstream "${name}" must be an http(s) URL without credentials, query or fragment: ${value}`,
    )
  }
  return { name, origin: url.origin, basePath: url.pathname.replace(/\/+$/, '') }
}

function segmentCount(prefix: string): number {
  return prefix === '/' ? 0 : prefix.split('/').length - 1
}
