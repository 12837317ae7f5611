/**
 * Where an issuer puts roles and scopes: configurable claim paths, so Auth0's namespaced
 * `https://example.com/roles` or Keycloak's `realm_access.roles` map onto keygate's roles, and scopes come
 * from `scope` (a space-separated string) or `scp` (an array, as Azure AD and Okta send it).
 */

/** A claim path: the keys from the payload down to the value. */
export type ClaimPath = readonly string[]

/** The token profiles an issuer's access tokens are checked as. */
export type IssuerTokenProfile = 'rfc9068' | 'jwt'

/** Where roles and scopes are read from (see `claimPath` for the syntax). */
export interface ClaimMapping {
  roles?: string
  scopes?: string
}

/**
 * A claim path from its configured form: a name starting with `http://` or `https://` is one claim, whole (a
 * namespaced claim, dots and slashes included); anything else is a dot path into nested objects.
 * @example
 * claimPath('realm_access.roles') // ['realm_access', 'roles']
 * claimPath('https://example.com/roles') // ['https://example.com/roles']
 */
export function claimPath(spec: string): ClaimPath {
  return /^https?:\/\//i.test(spec) ? [spec] : spec.split('.')
}

/** The value at `path` in `claims` (own properties only), or undefined. */
export function claimAt(claims: Readonly<Record<string, unknown>>, path: ClaimPath): unknown {
  let value: unknown = claims
  for (const key of path) {
    if (typeof value !== 'object' || value === null || !Object.hasOwn(value, key)) return undefined
    value = (value as Record<string, unknown>)[key]
  }
  return value
}

const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string')

/** Roles: an array of strings, or absent. `undefined` return means the claim is malformed. */
export function rolesFrom(value: unknown): readonly string[] | undefined {
  if (value === undefined) return []
  return isStringArray(value) ? value : undefined
}

/** Scopes: a space-separated string or an array of strings, or absent. `undefined`: malformed. */
export function scopesFrom(value: unknown): readonly string[] | undefined {
  if (value === undefined) return []
  if (typeof value === 'string') return value.split(' ').filter(Boolean)
  return isStringArray(value) ? value : undefined
}
