/**
 * Which ways of logging in are on (LOGIN_METHODS): `password`, `email-code` and `external` (tokens of a
 * trusted external issuer). Switching is a restart with another value: a disabled method's endpoints answer
 * 403 `KG_LOGIN_METHOD_DISABLED`, and `/auth/methods` and the discovery document list only what is on, so
 * the browser client and the demo show only those.
 */
import { KeygateError } from '../../lib/errors.js'

export const LOGIN_METHODS = ['password', 'email-code', 'external'] as const
export type LoginMethod = (typeof LOGIN_METHODS)[number]

/** LOGIN_METHODS when unset: password login alone, as before the setting existed. */
export const DEFAULT_LOGIN_METHODS = 'password'

/**
 * Parses LOGIN_METHODS (a comma list, any non-empty subset of LOGIN_METHODS); throws an Error naming the
 * setting otherwise.
 * @example
 * parseLoginMethods('password, email-code') // Set { 'password', 'email-code' }
 */
export function parseLoginMethods(value: string): ReadonlySet<LoginMethod> {
  const entries = value
    .split(',')
    .map((entry) => entry.trim().toLowerCase())
    .filter((entry) => entry !== '')
  const unknown = entries.filter((entry) => !(LOGIN_METHODS as readonly string[]).includes(entry))
  if (entries.length === 0 || unknown.length > 0) {
    throw new Error(
      `keygate: invalid configuration: LOGIN_METHODS must be a comma-separated, non-empty subset of ${LOGIN_METHODS.join(', ')}` +
        (unknown.length > 0 ? ` (unknown: ${unknown.join(', ')})` : ''),
    )
  }
  return new Set(entries as LoginMethod[])
}

/** Throws 403 KG_LOGIN_METHOD_DISABLED unless `method` is on. */
export function requireLoginMethod(methods: ReadonlySet<LoginMethod>, method: LoginMethod): void {
  if (!methods.has(method)) {
    throw new KeygateError('KG_LOGIN_METHOD_DISABLED', {
      message: `The ${method} login method is disabled on this issuer`,
    })
  }
}
