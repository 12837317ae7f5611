import t from 'tap'
import { bearer, claimsOf, issuerFixture, login, PASSWORD, refreshRequest, register } from '../fixtures.js'
import { latestCode } from '../mail-outbox.js'

const ADMIN_ENV = { KEYGATE_ADMIN_EMAIL: 'root@example.com', KEYGATE_ADMIN_PASSWORD: 'admin password 1' }

async function adminFixture(t: Parameters<typeof issuerFixture>[0], env: Record<string, string> = {}) {
  const fixture = await issuerFixture(t, { env: { ...ADMIN_ENV, ...env } })
  const admin = await login(fixture.app, ADMIN_ENV.KEYGATE_ADMIN_EMAIL, ADMIN_ENV.KEYGATE_ADMIN_PASSWORD)
  return { ...fixture, auth: bearer(admin.accessToken) }
}

t.test('only a Bearer token with the admin role gets in (RFC 6750 answers)', async (t) => {
  const { app } = await adminFixture(t)
  await register(app, 'plain@example.com')
  const plain = await login(app, 'plain@example.com')
  const anonymous = await app.inject('/admin/keys')
  t.equal(anonymous.statusCode, 401)
  t.equal(anonymous.headers['www-authenticate'], 'Bearer realm="keygate"')
  const garbage = await app.inject({ url: '/admin/keys', headers: bearer('not.a.token') })
  t.equal(garbage.statusCode, 401)
  t.match(garbage.headers['www-authenticate'], /error="invalid_token"/)
  const forbidden = await app.inject({ url: '/admin/keys', headers: bearer(plain.accessToken) })
  t.equal(forbidden.statusCode, 403)
  t.equal(forbidden.json().code, 'KG_INSUFFICIENT_SCOPE')
  t.match(forbidden.headers['www-authenticate'], /error="insufficient_scope"/)
})

t.test('keys: list, rotate (refused while too early), revoke', async (t) => {
  const { app, clock, auth } = await adminFixture(t, { KEY_PUBLISH_LEAD: '10m' })
  const list = await app.inject({ url: '/admin/keys', headers: auth })
  t.equal(list.statusCode, 200)
  const keys = list.json().keys
  t.same(
    keys.map((k: { state: string }) => k.state),
    ['next', 'active'],
  )
  t.notOk(JSON.stringify(keys).includes('"d"'), 'no key material')
  t.match(keys[1], { kid: String, alg: 'RS256', created_at: String, activated_at: String, remove_at: null })

  // The pair made on first start rotates at once; the next key that rotation publishes must wait the lead.
  clock.advance(1000)
  const first = await app.inject({ method: 'POST', url: '/admin/keys/rotate', headers: auth })
  t.equal(first.statusCode, 200)
  t.equal(first.json().keys[1].kid, keys[0].kid, 'the published next key now signs')
  const early = await app.inject({ method: 'POST', url: '/admin/keys/rotate', headers: auth })
  t.equal(early.statusCode, 409)
  t.equal(early.json().code, 'KG_KEY_ROTATION_TOO_EARLY')
  t.equal(early.headers['retry-after'], '600')
  t.ok(early.json().rotate_after)

  clock.advance(10 * 60_000)
  const rotated = await app.inject({ method: 'POST', url: '/admin/keys/rotate', headers: auth })
  t.equal(rotated.statusCode, 200)
  const after = rotated.json().keys as Array<{ kid: string; state: string }>
  t.same(
    after.map((k) => k.state),
    ['next', 'active', 'retired', 'retired'],
  )
  t.equal(after[1]!.kid, first.json().keys[0].kid, 'the next key published by the first rotation now signs')

  const active = after[1]!.kid
  const revoked = await app.inject({ method: 'POST', url: `/admin/keys/${active}/revoke`, headers: auth })
  t.equal(revoked.statusCode, 200)
  t.same(
    revoked.json().keys.map((k: { state: string }) => k.state),
    ['next', 'active', 'retired', 'retired', 'revoked'],
  )
  t.notOk(
    (await app.inject('/.well-known/jwks.json')).json().keys.some((k: { kid: string }) => k.kid === active),
    'withdrawn from the JWKS at once',
  )
  t.match(await app.issuer.store.listRevocations(0, 10), [{ type: 'key', kid: active }])
  const again = await app.inject({ method: 'POST', url: `/admin/keys/${active}/revoke`, headers: auth })
  t.equal(again.statusCode, 409)
  t.equal(again.json().code, 'KG_KEY_STATE_CONFLICT')
  const unknown = await app.inject({ method: 'POST', url: '/admin/keys/nope/revoke', headers: auth })
  t.equal(unknown.statusCode, 404)
  t.equal(unknown.json().code, 'KG_KEY_NOT_FOUND')
})

t.test('users: create, list, roles, sessions, logout, session revoke', async (t) => {
  const { app, clock, auth } = await adminFixture(t, { REGISTRATION: 'closed' })
  clock.advance(1000)
  const created = await app.inject({
    method: 'POST',
    url: '/admin/users',
    headers: auth,
    payload: { email: 'New@Example.com', password: PASSWORD, roles: ['user', 'support'] },
  })
  t.equal(created.statusCode, 201, 'admins create accounts when registration is closed')
  const user = created.json()
  t.match(user, { id: String, email: 'new@example.com', roles: ['user', 'support'] })
  t.notOk('password_hash' in user)
  const dup = await app.inject({
    method: 'POST',
    url: '/admin/users',
    headers: auth,
    payload: { email: 'new@example.com', password: PASSWORD },
  })
  t.equal(dup.statusCode, 409)
  const badRole = await app.inject({
    method: 'POST',
    url: '/admin/users',
    headers: auth,
    payload: { email: 'x@example.com', password: PASSWORD, roles: ['has space'] },
  })
  t.equal(badRole.statusCode, 400)

  const listed = await app.inject({ url: '/admin/users?limit=10', headers: auth })
  t.same(
    listed.json().users.map((u: { email: string }) => u.email),
    ['root@example.com', 'new@example.com'],
  )
  t.equal((await app.inject({ url: '/admin/users?limit=ten', headers: auth })).statusCode, 400)
  t.same((await app.inject({ url: '/admin/users?offset=1', headers: auth })).json().users.length, 1)

  const s1 = await login(app, 'new@example.com')
  clock.advance(1000)
  const s2 = await login(app, 'new@example.com')
  const roles = await app.inject({
    method: 'PUT',
    url: `/admin/users/${user.id}/roles`,
    headers: auth,
    payload: { roles: ['user', 'support', 'editor'] },
  })
  t.equal(roles.statusCode, 200)
  t.same(roles.json().roles, ['user', 'support', 'editor'])
  const refreshed = await refreshRequest(app, s1.refreshToken, s1.csrfToken)
  t.same(
    claimsOf(refreshed.json().access_token).roles,
    ['user', 'support', 'editor'],
    'a role added shows at the next refresh; nothing is revoked',
  )
  t.equal(
    (
      await app.inject({
        method: 'PUT',
        url: '/admin/users/00000000-0000-0000-0000-000000000000/roles',
        headers: auth,
        payload: { roles: [] },
      })
    ).statusCode,
    404,
  )

  const sessions = await app.inject({ url: `/admin/users/${user.id}/sessions`, headers: auth })
  t.equal(sessions.statusCode, 200)
  t.equal(sessions.json().sessions.length, 2)
  const sid2 = claimsOf(s2.accessToken).sid as string
  t.match(sessions.json().sessions[0], { id: sid2, client_id: 'keygate-web', revoked_at: null })

  const revokeOne = await app.inject({ method: 'POST', url: `/admin/sessions/${sid2}/revoke`, headers: auth })
  t.equal(revokeOne.statusCode, 204)
  t.equal((await refreshRequest(app, s2.refreshToken, s2.csrfToken)).statusCode, 401)
  t.equal(
    (await app.inject({ method: 'POST', url: '/admin/sessions/nope/revoke', headers: auth })).json().code,
    'KG_SESSION_NOT_FOUND',
  )

  clock.advance(1000)
  const logout = await app.inject({ method: 'POST', url: `/admin/users/${user.id}/logout`, headers: auth })
  t.equal(logout.statusCode, 204)
  const s1next = refreshed.cookies.find((c) => c.name === 'kg_refresh')!.value
  t.equal((await refreshRequest(app, s1next, s1.csrfToken)).statusCode, 401, 'every session ended')
  t.equal(
    (await app.inject({ method: 'POST', url: '/admin/users/nope/logout', headers: auth })).json().code,
    'KG_USER_NOT_FOUND',
  )
  const events = await app.issuer.store.listRevocations(0, 10)
  t.same(
    events.map((e) => e.type),
    ['session', 'user'],
  )
})

t.test(
  'the admin is created at start only when both settings are given and the account is new',
  async (t) => {
    const { app, logs, dir } = await adminFixture(t)
    const admin = await app.issuer.store.findUserByEmail('root@example.com')
    t.same(admin!.roles, ['admin', 'user'])
    t.equal(logs.find('created the admin account').length, 1)
    await app.close()
    const again = await issuerFixture(t, {
      dir,
      env: { ...ADMIN_ENV, KEYGATE_ADMIN_PASSWORD: 'another password' },
    })
    t.same(again.logs.find('created the admin account'), [], 'an existing account is left alone')
    t.ok(
      await login(again.app, 'root@example.com', ADMIN_ENV.KEYGATE_ADMIN_PASSWORD),
      'its password unchanged',
    )
    await t.rejects(issuerFixture(t, { env: { KEYGATE_ADMIN_EMAIL: 'a@example.com' } }), {
      message: /KEYGATE_ADMIN_EMAIL and KEYGATE_ADMIN_PASSWORD must be set together/,
    })
  },
)

t.test('taking a role away revokes the user’s tokens at once: a demoted admin cannot act', async (t) => {
  const { app, clock, auth } = await adminFixture(t)
  const created = await app.inject({
    method: 'POST',
    url: '/admin/users',
    headers: auth,
    payload: { email: 'deputy@example.com', password: PASSWORD, roles: ['admin', 'user'] },
  })
  const deputy = created.json() as { id: string }
  clock.advance(1000)
  const session = await login(app, 'deputy@example.com')
  const asDeputy = bearer(session.accessToken)
  t.equal((await app.inject({ url: '/admin/users', headers: asDeputy })).statusCode, 200, 'an admin')

  clock.advance(1000)
  const demoted = await app.inject({
    method: 'PUT',
    url: `/admin/users/${deputy.id}/roles`,
    headers: auth,
    payload: { roles: ['user'] },
  })
  t.equal(demoted.statusCode, 200)
  const denied = await app.inject({
    method: 'POST',
    url: '/admin/users',
    headers: asDeputy,
    payload: { email: 'sneaky@example.com', password: PASSWORD, roles: ['admin'] },
  })
  t.equal(denied.statusCode, 401, 'the token minted while an admin is revoked, not merely expired later')
  t.equal(denied.json().code, 'KG_TOKEN_REVOKED')
  t.equal(
    (await refreshRequest(app, session.refreshToken, session.csrfToken)).statusCode,
    401,
    'and its sessions end (recordUser): the next login carries the reduced roles',
  )
  const events = await app.issuer.store.listRevocations(0, 10)
  t.match(events.at(-1), { type: 'user', subject: deputy.id }, 'the revocation went out on the feed')
})

t.test(
  'disabling a user: no login by any method, no refresh, tokens revoked; enabling lets them in',
  async (t) => {
    const { app, clock, auth, config } = await adminFixture(t, { LOGIN_METHODS: 'password,email-code' })
    const created = await app.inject({
      method: 'POST',
      url: '/admin/users',
      headers: auth,
      payload: { email: 'deputy@example.com', password: PASSWORD, roles: ['admin', 'user'] },
    })
    const deputy = created.json() as { id: string; disabled_at: string | null }
    t.equal(deputy.disabled_at, null, 'accounts start enabled')
    clock.advance(1000)
    const session = await login(app, 'deputy@example.com')
    const asDeputy = bearer(session.accessToken)
    t.equal((await app.inject({ url: '/admin/users', headers: asDeputy })).statusCode, 200)

    clock.advance(1000)
    const disabled = await app.inject({
      method: 'POST',
      url: `/admin/users/${deputy.id}/disable`,
      headers: auth,
    })
    t.equal(disabled.statusCode, 200)
    t.equal(disabled.json().disabled_at, new Date(clock.now()).toISOString())
    const denied = await app.inject({ url: '/admin/users', headers: asDeputy })
    t.equal(denied.statusCode, 401, 'the access token minted before is revoked at once')
    t.equal(denied.json().code, 'KG_TOKEN_REVOKED')
    t.equal(
      (await refreshRequest(app, session.refreshToken, session.csrfToken)).statusCode,
      401,
      'no refresh',
    )
    const events = await app.issuer.store.listRevocations(0, 10)
    t.match(events.at(-1), { type: 'user', subject: deputy.id }, 'the revocation went out on the feed')
    const sessions = await app.inject({ url: `/admin/users/${deputy.id}/sessions`, headers: auth })
    t.match(sessions.json().sessions, [{ revoked_reason: 'disabled' }])

    const byPassword = await app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { email: 'deputy@example.com', password: PASSWORD },
    })
    t.equal(byPassword.statusCode, 403, 'the right password no longer logs in')
    t.equal(byPassword.json().code, 'KG_ACCOUNT_DISABLED')
    const wrong = await app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { email: 'deputy@example.com', password: 'not the password' },
    })
    t.equal(wrong.json().code, 'KG_INVALID_CREDENTIALS', 'a wrong password learns nothing of it')
    await app.inject({ method: 'POST', url: '/auth/email-code', payload: { email: 'deputy@example.com' } })
    const code = await latestCode(app, config.DATA_DIR, 'deputy@example.com')
    const byCode = await app.inject({
      method: 'POST',
      url: '/auth/email-code/verify',
      payload: { email: 'deputy@example.com', code },
    })
    t.equal(byCode.json().code, 'KG_ACCOUNT_DISABLED', 'nor does an e-mail code')

    const again = await app.inject({
      method: 'POST',
      url: `/admin/users/${deputy.id}/disable`,
      headers: auth,
    })
    t.equal(again.json().disabled_at, disabled.json().disabled_at, 'disabling again changes nothing')
    t.equal((await app.issuer.store.listRevocations(0, 10)).length, events.length, 'and records nothing')
    const listed = await app.inject({ url: '/admin/users', headers: auth })
    const users = listed.json().users as Array<{ email: string; disabled_at: string | null }>
    t.equal(users.find((u) => u.email === 'root@example.com')?.disabled_at, null)
    const root = (listed.json().users as Array<{ id: string; email: string }>).find(
      (u) => u.email === 'root@example.com',
    )!
    const self = await app.inject({ method: 'POST', url: `/admin/users/${root.id}/disable`, headers: auth })
    t.equal(self.statusCode, 409, 'an admin cannot disable their own account')
    t.equal(self.json().code, 'KG_DISABLE_SELF')
    t.equal((await app.inject({ url: '/admin/users', headers: auth })).statusCode, 200, 'and stays in')
    t.equal(users.find((u) => u.email === 'deputy@example.com')?.disabled_at, disabled.json().disabled_at)
    t.equal(
      (await app.inject({ method: 'POST', url: '/admin/users/nope/disable', headers: auth })).json().code,
      'KG_USER_NOT_FOUND',
    )
    t.equal(
      (await app.inject({ method: 'POST', url: '/admin/users/nope/enable', headers: auth })).json().code,
      'KG_USER_NOT_FOUND',
    )
    t.equal(
      (await app.inject({ method: 'POST', url: `/admin/users/${deputy.id}/disable`, headers: asDeputy }))
        .statusCode,
      401,
    )

    clock.advance(1000)
    const enabled = await app.inject({
      method: 'POST',
      url: `/admin/users/${deputy.id}/enable`,
      headers: auth,
    })
    t.equal(enabled.statusCode, 200)
    t.equal(enabled.json().disabled_at, null)
    const back = await login(app, 'deputy@example.com')
    t.equal((await app.inject({ url: '/admin/users', headers: bearer(back.accessToken) })).statusCode, 200)
    t.equal(
      (await app.inject({ url: '/admin/users', headers: asDeputy })).statusCode,
      401,
      'tokens from before the disabling stay revoked',
    )
  },
)
