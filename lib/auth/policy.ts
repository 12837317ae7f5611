/**
 * Route requirements: the issuers a route accepts callers from, and roles and scopes a caller must hold, all
 * of them or any one.
 */
import { KeygateError } from './errors.js'
import type { AuthRequirements, Identity } from './types.js'

function holds(have: readonly string[], want: readonly string[] | undefined, match: 'any' | 'all'): boolean {
  if (!want || want.length === 0) return true
  return match === 'all' ? want.every((w) => have.includes(w)) : want.some((w) => have.includes(w))
}

/**
 * Throws 403 `KG_TOKEN_ISSUER_NOT_ACCEPTED` when the route does not accept the caller's issuer, and 403
 * `KG_INSUFFICIENT_SCOPE` unless the identity meets the requirements. The error names what was
 * required (RFC 6750 §3's `scope` attribute), never what the caller holds.
 */
export function checkRequirements(identity: Identity, requirements: AuthRequirements): void {
  if (requirements.issuers !== undefined && !requirements.issuers.includes(identity.issuer)) {
    throw new KeygateError('KG_TOKEN_ISSUER_NOT_ACCEPTED')
  }
  const match = requirements.match ?? 'all'
  const rolesOk = holds(identity.roles, requirements.roles, match)
  const scopesOk = holds(identity.scopes, requirements.scopes, match)
  if (rolesOk && scopesOk) return
  const required = [
    ...(rolesOk ? [] : (requirements.roles ?? [])),
    ...(scopesOk ? [] : (requirements.scopes ?? [])),
  ]
  throw new KeygateError('KG_INSUFFICIENT_SCOPE', { details: { required, match } })
}
