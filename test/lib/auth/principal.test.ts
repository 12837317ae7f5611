import t from 'tap'
import {
  grantFilters,
  plainSubjectAllowed,
  principalsOf,
  PRIVILEGED_ROLES,
} from '../../../lib/auth/principal.js'

t.test('principal ids: plain for the own issuer, qualified by iss for any other', async (t) => {
  t.equal(principalsOf('https://keygate.test', true)('user-1'), 'user-1')
  t.equal(principalsOf('https://idp.test/', false)('user-1'), 'https://idp.test/#user-1')
  t.notOk(plainSubjectAllowed('https://idp.test/#user-1'), 'a plain subject cannot pose as a qualified one')
  t.notOk(plainSubjectAllowed('HTTP://x'))
  t.ok(plainSubjectAllowed('9b2f6c1e-uuid'))
})

t.test('grants: the own issuer grants all; others no privileged role unless configured', async (t) => {
  t.same(PRIVILEGED_ROLES, ['admin'])
  const own = grantFilters(undefined, true)
  const roles = ['admin', 'user']
  t.equal(own.roles(roles), roles, 'the same array, nothing allocated')
  const foreign = grantFilters(undefined, false)
  t.same(foreign.roles(roles), ['user'])
  const users = ['user']
  t.equal(foreign.roles(users), users, 'nothing to drop: the same array')
  t.same(foreign.scopes(['profile', 'orders']), ['profile', 'orders'], 'every scope by default')
  const listed = grantFilters({ roles: ['admin'], scopes: ['profile'] }, false)
  t.same(listed.roles(roles), ['admin'])
  t.same(listed.scopes(['profile', 'orders']), ['profile'])
  t.same(grantFilters({ roles: '*' }, false).roles(roles), roles, "'*' grants every role")
  t.same(grantFilters({ roles: [] }, true).roles(roles), [], 'even the own issuer can be limited')
})
