/**
 * A principal is (issuer, subject): principle 7 of the architecture. Two issuers may use the same `sub` for
 * different people, so data is keyed by a principal id that names both — except for keygate's own users,
 * whose plain ids predate other issuers and stay valid as they are.
 *
 * The two forms cannot meet: a qualified id starts with its issuer's URL (`http://` or `https://`, trusted
 * issuers have no `#`), and a plain subject that looks like one is refused (`plainSubjectAllowed`).
 */
import type { IssuerGrants } from './types.js'

/** Separates issuer and subject in a qualified principal id. Trusted issuers contain none. */
export const PRINCIPAL_SEPARATOR = '#'

/** Roles that grant power over keygate itself: no issuer but keygate's own grants them unless configured to. */
export const PRIVILEGED_ROLES: readonly string[] = ['admin']

/** How one issuer's subjects become principal ids. */
export type PrincipalOf = (subject: string) => string

/**
 * The principal ids of an issuer's subjects: plain for keygate's own, `<iss>#<sub>` for any other.
 * @example
 * principalsOf('https://tenant.eu.auth0.com/', false)('auth0|42') // 'https://tenant.eu.auth0.com/#auth0|42'
 */
export function principalsOf(issuer: string, own: boolean): PrincipalOf {
  if (own) return (subject) => subject
  const prefix = issuer + PRINCIPAL_SEPARATOR
  return (subject) => prefix + subject
}

/** A plain (own issuer's) subject may not look like a qualified principal id. */
export function plainSubjectAllowed(subject: string): boolean {
  return !/^https?:\/\//i.test(subject)
}

/** Keeps of `values` those a grant allows; `'*'` keeps all (the same array, nothing allocated). */
export type GrantFilter = (values: readonly string[]) => readonly string[]

const ALL: GrantFilter = (values) => values

/** Compiles what an issuer may grant into two filters, decided once when the policy is built. */
export function grantFilters(
  grants: IssuerGrants | undefined,
  own: boolean,
): {
  roles: GrantFilter
  scopes: GrantFilter
} {
  const roles = grants?.roles ?? (own ? '*' : undefined)
  return {
    roles: roles === undefined ? except(PRIVILEGED_ROLES) : only(roles),
    scopes: only(grants?.scopes ?? '*'),
  }
}

function only(allowed: readonly string[] | '*'): GrantFilter {
  if (allowed === '*') return ALL
  const set = new Set(allowed)
  return (values) =>
    values.every((v) => set.has(v)) ? values : Object.freeze(values.filter((v) => set.has(v)))
}

function except(denied: readonly string[]): GrantFilter {
  const set = new Set(denied)
  return (values) =>
    values.some((v) => set.has(v)) ? Object.freeze(values.filter((v) => !set.has(v))) : values
}
