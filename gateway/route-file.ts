/**
 * The JSON shape of the route table (`GATEWAY_ROUTES_FILE`): its schema, the built-in table, and reading and
 * validating a file with errors that name the bad entry.
 */
import { readFileSync } from 'node:fs'
import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'

/** A path prefix or rewrite: absolute, normalised (no `.`/`..`, no empty segment, no trailing slash, no escape). */
const PATH_PATTERN = "^/$|^(/(?!\\.\\.?(/|$))[A-Za-z0-9\\-._~!$&'()*+,;=:@]+)+$"
const RoutePath = (what: string) =>
  Type.String({
    pattern: PATH_PATTERN,
    description: `${what} must be a normalised absolute path like /api/x`,
  })

/**
 * A claim to forward: a dot path into the token's claims (`email`, `org.id`), or a URL-named claim taken
 * whole (`https://example.com/roles`, as Auth0 namespaces them).
 */
const CLAIM_PATH_PATTERN = '^([A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*|https?://[\\x21-\\x7e]+)$'
/** The `<name>` of an `x-keygate-claim-<name>` header: an HTTP token. */
const HEADER_SUFFIX_PATTERN = '^[A-Za-z0-9.-]+$'
const ClaimPathSchema = Type.String({
  pattern: CLAIM_PATH_PATTERN,
  description: 'a claim must be a dot path like org.id or a URL-named claim',
})

const AuthSchema = Type.Object(
  {
    mode: Type.Union([Type.Literal('required'), Type.Literal('optional'), Type.Literal('none')]),
    roles: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
    scopes: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
    match: Type.Optional(Type.Union([Type.Literal('any'), Type.Literal('all')])),
    sensitive: Type.Optional(Type.Boolean()),
    /** The issuers (exact `iss`) whose callers the route accepts; default every trusted one. */
    issuers: Type.Optional(Type.Array(Type.String({ pattern: '^https?://' }), { minItems: 1 })),
  },
  { additionalProperties: false },
)

const ForwardSchema = Type.Object(
  {
    /**
     * Relay the caller's access token in `Authorization` (on a `none` route: the client's, as sent). Default:
     * false — the upstream gets the assertion addressed to it, which it cannot replay anywhere else.
     */
    token: Type.Optional(Type.Boolean()),
    /** Attach the gateway's signed assertion. Default: true. */
    assertion: Type.Optional(Type.Boolean()),
    subject: Type.Optional(Type.Boolean()),
    roles: Type.Optional(Type.Boolean()),
    scopes: Type.Optional(Type.Boolean()),
    /** Claims as `x-keygate-claim-<path>`, or `{ claim, header }` to name the header (`x-keygate-claim-<header>`). */
    claims: Type.Optional(
      Type.Array(
        Type.Union(
          [
            ClaimPathSchema,
            Type.Object(
              {
                claim: ClaimPathSchema,
                header: Type.String({
                  pattern: HEADER_SUFFIX_PATTERN,
                  description: 'a header suffix must be letters, digits, dots and dashes',
                }),
              },
              { additionalProperties: false },
            ),
          ],
          {
            description:
              'a claim must be a dot path like org.id, a URL-named claim, or { "claim": …, "header": … }',
          },
        ),
      ),
    ),
  },
  { additionalProperties: false },
)

const RouteSchema = Type.Object(
  {
    prefix: RoutePath('prefix'),
    upstream: Type.String({ minLength: 1 }),
    rewrite: Type.Optional(RoutePath('rewrite')),
    auth: AuthSchema,
    forward: Type.Optional(ForwardSchema),
    timeoutMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 3_600_000 })),
    rateLimit: Type.Optional(
      Type.Object(
        { max: Type.Integer({ minimum: 1 }), windowMs: Type.Integer({ minimum: 1 }) },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
)

/** The JSON shape of `GATEWAY_ROUTES_FILE`. */
export const RouteFileSchema = Type.Object(
  {
    /** Upstream name → base URL. Merged over the built-in ones (issuer, profile, orders, files). */
    upstreams: Type.Optional(Type.Record(Type.String({ minLength: 1 }), Type.String())),
    routes: Type.Array(RouteSchema),
  },
  { additionalProperties: false },
)
export type RouteFile = Static<typeof RouteFileSchema>
export type RouteSpec = RouteFile['routes'][number]

/**
 * The built-in table: the issuer's public endpoints, its admin API for admins, and the three services.
 * Only the issuer receives a raw token, and only its own: `/auth` relays `Authorization` because
 * `/auth/logout-all` and `/auth/password` take the caller's Bearer token, and `/api/admin` the caller's token
 * because the issuer checks it itself (it minted it; it does not take assertions). The services receive
 * their assertion alone; orders exchanges its assertion at the issuer (RFC 8693) for a token addressed to
 * profile when it calls profile on the caller's behalf.
 */
export function defaultRouteFile(): RouteFile {
  const none = { mode: 'none' } as const
  const required = { mode: 'required' } as const
  return {
    routes: [
      { prefix: '/auth', upstream: 'issuer', auth: none, forward: { token: true } },
      { prefix: '/.well-known', upstream: 'issuer', auth: none },
      {
        prefix: '/api/admin',
        upstream: 'issuer',
        rewrite: '/admin',
        // Sensitive: an admin acting on a token whose revocation may not have arrived is refused (503)
        // while the revocation feed is out of contact.
        auth: { mode: 'required', roles: ['admin'], sensitive: true },
        forward: { token: true },
      },
      { prefix: '/api/profile', upstream: 'profile', rewrite: '/', auth: required },
      {
        prefix: '/api/orders',
        upstream: 'orders',
        rewrite: '/orders',
        auth: required,
      },
      { prefix: '/api/files', upstream: 'files', rewrite: '/files', auth: required },
      // One-time download links are the credential themselves: no login, verified by files.
      { prefix: '/api/files/download', upstream: 'files', rewrite: '/files/download', auth: none },
    ],
  }
}

/** A route table that cannot be used; the message names the file and the entry. */
export class RouteTableError extends Error {
  override name = 'RouteTableError'
}

/** Reads a route file as JSON (validation comes with `validateRouteFile`). */
export function readRouteFile(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    throw new RouteTableError(`GATEWAY_ROUTES_FILE ${file}: cannot read: ${(err as Error).message}`)
  }
}

/**
 * Checks a parsed route file against the schema; `source` names it in the error.
 * @throws RouteTableError naming the first bad entry and field
 */
export function validateRouteFile(input: unknown, source: string): RouteFile {
  const first = Value.Errors(RouteFileSchema, input).First()
  if (first === undefined) return input as RouteFile
  const match = /^\/routes\/(\d+)(\/.*)?$/.exec(first.path)
  let where = first.path === '' ? 'the file' : first.path.slice(1).replaceAll('/', '.')
  if (match) {
    const index = Number(match[1])
    const prefix = (input as { routes: Array<{ prefix?: unknown }> }).routes[index]?.prefix
    const field = match[2] ? match[2].slice(1).replaceAll('/', '.') : 'the entry'
    where = `routes[${index}]${typeof prefix === 'string' ? ` (prefix ${prefix})` : ''}: ${field}`
  }
  throw new RouteTableError(`${source}: ${where}: ${describe(first.schema, first.message)}`)
}

function describe(schema: TSchema, message: string): string {
  const choices = (schema.anyOf as TSchema[] | undefined)?.map((s) => s.const as unknown)
  if (choices?.every((c) => typeof c === 'string')) return `must be one of ${choices.join(', ')}`
  if (
    typeof schema.description === 'string' &&
    (schema.pattern !== undefined || schema.anyOf !== undefined)
  ) {
    return schema.description
  }
  return message.charAt(0).toLowerCase() + message.slice(1)
}
