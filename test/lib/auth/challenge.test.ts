/** lib/auth/challenge.ts: the RFC 6750 §3 `WWW-Authenticate` challenge of each refusal. */
import t from 'tap'
import { DEFAULT_REALM, withChallenge } from '../../../lib/auth/challenge.js'
import { KeygateError } from '../../../lib/errors.js'

const challengeOf = (err: KeygateError, realm = DEFAULT_REALM) =>
  withChallenge(err, realm).headers['www-authenticate']

t.test('no credential sent: the realm alone, no error attribute', async (t) => {
  t.equal(challengeOf(new KeygateError('KG_TOKEN_MISSING')), 'Bearer realm="keygate"')
  t.equal(challengeOf(new KeygateError('KG_TOKEN_MISSING'), 'api'), 'Bearer realm="api"')
})

t.test('a bad credential: its RFC 6750 error and a description', async (t) => {
  t.equal(
    challengeOf(new KeygateError('KG_TOKEN_EXPIRED')),
    'Bearer realm="keygate", error="invalid_token", error_description="The access token expired"',
  )
  t.equal(
    challengeOf(new KeygateError('KG_TOKEN_MULTIPLE')),
    'Bearer realm="keygate", error="invalid_request", error_description="The request carries more than one access token"',
  )
  t.equal(
    challengeOf(new KeygateError('KG_INSUFFICIENT_SCOPE', { details: { required: ['admin', 'orders'] } })),
    'Bearer realm="keygate", error="insufficient_scope", error_description="The access token lacks a required role or scope", scope="admin orders"',
    'insufficient_scope names what was required',
  )
  t.equal(
    challengeOf(new KeygateError('KG_INSUFFICIENT_SCOPE')),
    'Bearer realm="keygate", error="insufficient_scope", error_description="The access token lacks a required role or scope"',
    'no scope attribute without a list',
  )
})

t.test(
  'quoted values keep only what RFC 6750 allows: no quote, backslash or control character',
  async (t) => {
    const err = new KeygateError('KG_INVALID_REQUEST', { message: 'a "quoted" \\ line\nbreak, café' })
    t.equal(
      challengeOf(err, 'r"e\\alm'),
      'Bearer realm="realm", error="invalid_request", error_description="a quoted  linebreak, caf"',
    )
  },
)

t.test('the error keeps its code, message, headers, details and cause', async (t) => {
  const cause = new Error('underlying')
  const err = new KeygateError('KG_INSUFFICIENT_SCOPE', {
    headers: { 'cache-control': 'no-store' },
    details: { required: ['admin'], match: 'all' },
    cause,
  })
  const challenged = withChallenge(err, DEFAULT_REALM)
  t.not(challenged, err, 'a new error: the original is left as it was')
  t.equal(err.headers['www-authenticate'], undefined)
  t.equal(challenged.code, 'KG_INSUFFICIENT_SCOPE')
  t.equal(challenged.statusCode, 403)
  t.equal(challenged.message, err.message)
  t.equal(challenged.headers['cache-control'], 'no-store')
  t.strictSame(challenged.details, { required: ['admin'], match: 'all' })
  t.equal(challenged.cause, cause)
})

t.test('an error that is not about the credential passes through unchanged', async (t) => {
  for (const code of ['KG_REVOCATION_FEED_STALE', 'KG_RATE_LIMITED', 'KG_ROUTE_NOT_FOUND'] as const) {
    const err = new KeygateError(code)
    t.equal(withChallenge(err, DEFAULT_REALM), err, code)
  }
})
