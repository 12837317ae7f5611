import t from 'tap'
import type { Identity } from '../../../lib/auth/index.js'
import { canRelay, relayHeaders } from '../../../lib/identity/relay.js'

const base: Identity = {
  subject: 'alice',
  principal: 'alice',
  issuer: 'http://issuer',
  clientId: 'web',
  sessionId: 's',
  roles: ['admin'],
  scopes: ['orders'],
  tokenId: 'jti-1',
  issuedAt: 0,
  expiresAt: 0,
  keyId: 'k',
  claims: { sub: 'alice' },
  source: 'token',
  token: 'aaa.bbb.ccc',
}

t.test('a caller with an access token: its token, and the request id', async (t) => {
  t.ok(canRelay(base))
  t.same(relayHeaders(base, 'req-1'), { authorization: 'Bearer aaa.bbb.ccc', 'x-request-id': 'req-1' })
  t.same(relayHeaders(base), { authorization: 'Bearer aaa.bbb.ccc' }, 'the request id is optional')
})

t.test('a caller known only from a gateway assertion: nothing to relay', async (t) => {
  const fromAssertion: Identity = { ...base, source: 'assertion', token: undefined }
  t.notOk(canRelay(fromAssertion))
  t.equal(relayHeaders(fromAssertion, 'req-1'), undefined, 'no headers at all, never weaker ones')
  t.notOk(canRelay({ ...base, token: '' }), 'an empty token is no token')
  t.notOk(canRelay({ ...base, source: 'assertion' }), 'an assertion identity never relays, whatever it holds')
})

t.test('relayed headers carry no identity of their own', async (t) => {
  const headers = relayHeaders(base, 'req-1')!
  t.same(Object.keys(headers).sort(), ['authorization', 'x-request-id'])
  t.notOk(
    Object.keys(headers).some((h) => h.startsWith('x-keygate-') || h === 'x-user-id'),
    'no subject, roles or assertion headers',
  )
})
