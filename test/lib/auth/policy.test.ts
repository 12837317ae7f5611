/** lib/auth/policy.ts: a route's roles and scopes, all or any, and what a refusal names. */
import t from 'tap'
import { checkRequirements } from '../../../lib/auth/policy.js'
import type { AuthRequirements, Identity } from '../../../lib/auth/types.js'
import { KeygateError } from '../../../lib/errors.js'

function caller(roles: string[], scopes: string[]): Identity {
  return {
    subject: 'user-1',
    principal: 'user-1',
    issuer: 'http://issuer.test',
    clientId: undefined,
    sessionId: undefined,
    roles,
    scopes,
    tokenId: 'token-1',
    issuedAt: 0,
    expiresAt: 0,
    keyId: 'kid',
    claims: {},
    source: 'token',
    token: undefined,
  }
}

/** The details of the refusal, or 'ok'. */
function verdict(identity: Identity, requirements: AuthRequirements): unknown {
  try {
    checkRequirements(identity, requirements)
    return 'ok'
  } catch (err) {
    if (!(err instanceof KeygateError) || err.code !== 'KG_INSUFFICIENT_SCOPE') throw err
    return err.details
  }
}

t.test('no roles or scopes asked: anyone authenticated passes', async (t) => {
  t.equal(verdict(caller([], []), { mode: 'required' }), 'ok')
  t.equal(verdict(caller([], []), { mode: 'required', roles: [], scopes: [] }), 'ok')
  t.equal(verdict(caller([], []), { mode: 'optional', match: 'any', roles: [] }), 'ok')
})

t.test('match all (the default): every listed role and scope', async (t) => {
  const need: AuthRequirements = { mode: 'required', roles: ['admin', 'ops'], scopes: ['keys'] }
  t.equal(verdict(caller(['admin', 'ops', 'user'], ['keys', 'x']), need), 'ok')
  t.strictSame(verdict(caller(['admin'], ['keys']), need), { required: ['admin', 'ops'], match: 'all' })
  t.strictSame(verdict(caller(['admin', 'ops'], []), need), { required: ['keys'], match: 'all' })
  t.strictSame(
    verdict(caller([], []), need),
    { required: ['admin', 'ops', 'keys'], match: 'all' },
    'what was required, roles then scopes',
  )
})

t.test('match any: one listed role, and one listed scope', async (t) => {
  const need: AuthRequirements = {
    mode: 'required',
    roles: ['admin', 'ops'],
    scopes: ['a', 'b'],
    match: 'any',
  }
  t.equal(verdict(caller(['ops'], ['b']), need), 'ok')
  t.strictSame(verdict(caller(['ops'], ['c']), need), { required: ['a', 'b'], match: 'any' })
  t.strictSame(verdict(caller(['user'], ['a']), need), { required: ['admin', 'ops'], match: 'any' })
  t.equal(verdict(caller(['ops'], []), { mode: 'required', roles: ['admin', 'ops'], match: 'any' }), 'ok')
})

t.test('roles are not scopes, and names match exactly', async (t) => {
  t.notSame(verdict(caller([], ['admin']), { mode: 'required', roles: ['admin'] }), 'ok')
  t.notSame(verdict(caller(['admin'], []), { mode: 'required', scopes: ['admin'] }), 'ok')
  t.notSame(verdict(caller(['Admin', 'admins'], []), { mode: 'required', roles: ['admin'] }), 'ok')
})

t.test('a refusal names what was required, never what the caller holds', async (t) => {
  try {
    checkRequirements(caller(['secret-role'], ['secret-scope']), { mode: 'required', roles: ['admin'] })
    t.fail('refused')
  } catch (err) {
    t.ok(err instanceof KeygateError)
    const e = err as KeygateError
    t.equal(e.statusCode, 403)
    t.notMatch(JSON.stringify(e.toJSON()), /secret/)
  }
})

t.test('a route naming its issuers refuses callers of any other, before roles are looked at', async (t) => {
  const required: AuthRequirements = { mode: 'required', issuers: ['http://issuer.test'], roles: ['user'] }
  t.equal(verdict(caller(['user'], []), required), 'ok')
  t.throws(() => checkRequirements(caller(['user'], []), { ...required, issuers: ['https://idp.test/'] }), {
    code: 'KG_TOKEN_ISSUER_NOT_ACCEPTED',
    statusCode: 403,
  })
})
