/**
 * lib/auth/errors.ts: one error class for the plugin's codes and an application's, each code defined once.
 */
import t from 'tap'
import { AUTH_ERRORS, defineErrors, type ErrorCode, KeygateError } from '../../../lib/auth/errors.js'
import { ERRORS } from '../../../lib/errors.js'

t.test("a plugin code carries its status, RFC 6750 name, message and the caller's headers", async (t) => {
  const challenge = { 'www-authenticate': 'Bearer error="invalid_token"' }
  const err = new KeygateError('KG_TOKEN_EXPIRED', { headers: challenge })
  t.equal(err.statusCode, 401)
  t.equal(err.error, 'invalid_token')
  t.same(err.toJSON(), {
    error: 'invalid_token',
    code: 'KG_TOKEN_EXPIRED',
    message: 'The access token expired',
  })
  t.same(err.headers, challenge)
})

t.test("keygate's catalogue holds the plugin's codes, and its own codes make the same class", async (t) => {
  for (const code of Object.keys(AUTH_ERRORS)) t.ok(code in ERRORS, `${code} is in lib/errors.ts's catalogue`)
  const err = new KeygateError('KG_CSRF_FAILED')
  t.ok(err instanceof KeygateError)
  t.equal(err.statusCode, 403)
})

t.test('a code is defined once', async (t) => {
  t.doesNotThrow(
    () => defineErrors({ KG_TOKEN_EXPIRED: AUTH_ERRORS.KG_TOKEN_EXPIRED }),
    'the same spec again',
  )
  t.throws(
    () => defineErrors({ KG_TOKEN_EXPIRED: { status: 400, error: 'other', message: 'other' } }),
    /@keygate\/fastify-auth: error code KG_TOKEN_EXPIRED is already defined/,
  )
  t.throws(() => new KeygateError('KG_NEVER_DEFINED' as ErrorCode), TypeError, 'an undefined code')
})
