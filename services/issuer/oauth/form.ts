/**
 * The body of the OAuth endpoints: `application/x-www-form-urlencoded` (RFC 6749 §3.2, RFC 7009 §2.1,
 * RFC 7662 §2.1), parsed strictly. A parameter given twice is refused (RFC 6749 §3.2: "MUST NOT be included
 * more than once"), except `resource` and `audience`, which RFC 8707 §2 and RFC 8693 §2.1 let a client
 * repeat. A parameter without a value counts as absent (RFC 6749 §3.1).
 */
import type { FastifyInstance } from 'fastify'
import { ERRORS, type ErrorCode, KeygateError } from '../../../lib/errors.js'

export const FORM_CONTENT_TYPE = 'application/x-www-form-urlencoded'
/** Largest form accepted, in bytes: a subject token and a client assertion fit many times over. */
export const MAX_FORM_BYTES = 32 * 1024
/** Parameters a client may repeat. */
const REPEATABLE = new Set(['resource', 'audience'])

/** A parsed form: one value per parameter, a list for the repeatable ones. */
export type OAuthForm = Record<string, string | string[]>

/** An OAuth `invalid_request` with its description (`error_description`, RFC 6749 §5.2). */
export function invalidRequest(description: string): KeygateError {
  return oauthError('KG_OAUTH_INVALID_REQUEST', description)
}

/** An OAuth error answer: the catalogue's body plus `error_description`, which standard clients show. */
export function oauthError(
  code: ErrorCode,
  description: string = ERRORS[code].message,
  headers?: Record<string, string>,
): KeygateError {
  return new KeygateError(code, {
    message: description,
    ...(headers === undefined ? {} : { headers }),
    details: { error_description: description },
  })
}

/** Parses a form body (see the file comment); throws `invalid_request` on a repeated parameter. */
export function parseForm(body: string): OAuthForm {
  const form: OAuthForm = Object.create(null) as OAuthForm
  for (const [name, value] of new URLSearchParams(body)) {
    if (value === '') continue
    const seen = form[name]
    if (seen === undefined) {
      form[name] = REPEATABLE.has(name) ? [value] : value
    } else if (Array.isArray(seen)) {
      seen.push(value)
    } else {
      throw invalidRequest(`The parameter ${name.slice(0, 64)} is given more than once`)
    }
  }
  return { ...form }
}

/**
 * Makes the form the only body `app` (an encapsulated OAuth route plugin) accepts: JSON and anything else
 * is answered 415 before a handler runs.
 */
export function acceptFormsOnly(app: FastifyInstance): void {
  app.removeAllContentTypeParsers()
  app.addContentTypeParser(
    FORM_CONTENT_TYPE,
    { parseAs: 'string', bodyLimit: MAX_FORM_BYTES },
    (_request, body, done) => {
      try {
        done(null, parseForm(body as string))
      } catch (err) {
        done(err as Error)
      }
    },
  )
  app.addContentTypeParser('*', (_request, _payload, done) => {
    done(
      oauthError(
        'KG_UNSUPPORTED_MEDIA_TYPE',
        `OAuth endpoints take ${FORM_CONTENT_TYPE} bodies (RFC 6749 §3.2)`,
      ),
    )
  })
}

/** One parameter's value, or undefined. */
export function single(form: OAuthForm, name: string): string | undefined {
  const value = form[name]
  return Array.isArray(value) ? value[0] : value
}

/** A repeatable parameter's values (empty when absent). */
export function list(form: OAuthForm, name: string): string[] {
  const value = form[name]
  return value === undefined ? [] : Array.isArray(value) ? value : [value]
}
