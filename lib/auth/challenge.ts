/**
 * RFC 6750 §3 challenges: every refusal of a bearer credential carries a `WWW-Authenticate: Bearer …`
 * header with the realm, and (except when no credential was sent at all) the error and its description.
 */
import { KeygateError } from './errors.js'

/** Default `realm` of challenges. */
export const DEFAULT_REALM = 'keygate'

/** RFC 6750 allows %x20-21 / %x23-5B / %x5D-7E in quoted attribute values: no quote, no backslash. */
function quoted(value: string): string {
  return `"${value.replace(/[^\x20-\x7e]|["\\]/g, '')}"`
}

/** The error with its `WWW-Authenticate` challenge attached (errors that are not about the credential pass through). */
export function withChallenge(err: KeygateError, realm: string): KeygateError {
  const challengeError =
    err.code === 'KG_TOKEN_MISSING'
      ? undefined
      : err.error === 'invalid_token' || err.error === 'invalid_request' || err.error === 'insufficient_scope'
        ? err.error
        : null
  if (challengeError === null) return err
  let challenge = `Bearer realm=${quoted(realm)}`
  if (challengeError !== undefined) {
    challenge += `, error=${quoted(challengeError)}, error_description=${quoted(err.message)}`
    const required = err.details?.required
    if (challengeError === 'insufficient_scope' && Array.isArray(required)) {
      challenge += `, scope=${quoted(required.join(' '))}`
    }
  }
  return new KeygateError(err.code, {
    message: err.message,
    headers: { ...err.headers, 'www-authenticate': challenge },
    ...(err.details ? { details: err.details } : {}),
    cause: err.cause,
  })
}
