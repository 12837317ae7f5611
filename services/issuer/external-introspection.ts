/**
 * Whether an external provider still holds its token active (RFC 7662 introspection), asked at every
 * external login when EXTERNAL_ISSUERS gives the issuer an `introspection` endpoint. A login is not the
 * request path (principle 1 is about verifying requests), so one call to the provider here is acceptable,
 * and it is the only way a revocation at the provider (logout, a blocked user) stops a token that still
 * verifies. When the provider cannot answer, no session is started: a revoked token must not get in just
 * because its provider is down.
 */
import { KeygateError } from '../../lib/errors.js'
import { type OAuthAnswer, postOAuthForm } from '../../lib/oauth-client.js'
import type { ExternalIntrospectionEndpoint } from './external-issuers.js'

/** How long keygate waits for a provider's introspection answer, in milliseconds (5 s). */
export const INTROSPECTION_TIMEOUT_MS = 5000
/** Largest introspection answer read, in bytes (16 KiB). */
export const MAX_INTROSPECTION_ANSWER_BYTES = 16 * 1024
/** `Retry-After` of the 503 when the provider cannot answer, in seconds. */
export const INTROSPECTION_RETRY_AFTER_S = 5

/** What the token must be for (its verified claims): a provider answer about anything else is inactive. */
export interface IntrospectedToken {
  token: string
  issuer: string
  subject: string
}

/** Why the provider could not answer (logged; the client sees only the 503). */
export class IntrospectionUnavailable extends Error {}

/**
 * Resolves when `endpoint` says the token is active and (where it says so) for the same issuer and subject.
 * Throws KG_EXTERNAL_TOKEN_INACTIVE (401) when it is not, and an IntrospectionUnavailable when the provider
 * is unreachable, slow, refuses keygate's credentials or answers something that is not an RFC 7662 answer.
 * @example
 * await assertActive(issuer.introspection, { token, issuer: verified.issuer, subject: verified.subject })
 */
export async function assertActive(
  endpoint: ExternalIntrospectionEndpoint,
  presented: IntrospectedToken,
  timeoutMs = INTROSPECTION_TIMEOUT_MS,
): Promise<void> {
  let answer: OAuthAnswer
  try {
    answer = await postOAuthForm(
      endpoint.endpoint,
      endpoint,
      { token: presented.token, token_type_hint: 'access_token' },
      { timeoutMs, maxBytes: MAX_INTROSPECTION_ANSWER_BYTES },
    )
  } catch (err) {
    throw new IntrospectionUnavailable(`unreachable: ${(err as Error).message}`)
  }
  if (answer.status !== 200) throw new IntrospectionUnavailable(`answered ${answer.status}`)
  const json = answer.json
  if (json === undefined) throw new IntrospectionUnavailable('answer too large or not a JSON object')
  if (typeof json.active !== 'boolean') throw new IntrospectionUnavailable('answer has no boolean "active"')
  // RFC 7662 §2.2: `active` is all that is required; `iss` and `sub`, when given, must be the token's own.
  const same = (claim: unknown, expected: string) => claim === undefined || claim === expected
  if (!json.active || !same(json.iss, presented.issuer) || !same(json.sub, presented.subject)) {
    throw new KeygateError('KG_EXTERNAL_TOKEN_INACTIVE')
  }
}

/** The 503 a login gets while its provider cannot say whether the token is active. */
export function providerUnavailable(): KeygateError {
  return new KeygateError('KG_EXTERNAL_ISSUER_UNAVAILABLE', {
    headers: { 'retry-after': String(INTROSPECTION_RETRY_AFTER_S) },
  })
}
