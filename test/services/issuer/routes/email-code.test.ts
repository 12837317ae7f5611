import { join } from 'node:path'
import t from 'tap'
import { assertNoSecretsLogged, claimsOf, cookie, issuerFixture, login, register } from '../fixtures.js'
import { latestCode, mailTo, outboxFiles } from '../mail-outbox.js'

type App = Awaited<ReturnType<typeof issuerFixture>>['app']

const EMAIL_CODE = { LOGIN_METHODS: 'password,email-code' }

const requestCode = (app: App, email: string, remoteAddress = '203.0.113.1') =>
  app.inject({ method: 'POST', url: '/auth/email-code', remoteAddress, payload: { email } })

const verify = (app: App, email: string, code: string, remoteAddress = '203.0.113.1') =>
  app.inject({ method: 'POST', url: '/auth/email-code/verify', remoteAddress, payload: { email, code } })

/** A six-digit code that is not `code`. */
const other = (code: string) => String((Number(code) + 1) % 1_000_000).padStart(6, '0')

t.test('off by default: 403 with a stable code, and /auth/methods says what is on', async (t) => {
  const { app } = await issuerFixture(t)
  const res = await requestCode(app, 'a@example.com')
  t.equal(res.statusCode, 403)
  t.equal(res.json().code, 'KG_LOGIN_METHOD_DISABLED')
  t.equal((await verify(app, 'a@example.com', '123456')).json().code, 'KG_LOGIN_METHOD_DISABLED')
  const methods = await app.inject({ method: 'GET', url: '/auth/methods' })
  t.equal(methods.statusCode, 200)
  t.same(methods.json(), { methods: ['password'], registration: 'open' })
  const discovery = (await app.inject({ method: 'GET', url: '/.well-known/openid-configuration' })).json()
  t.same(discovery.keygate_login_methods_supported, ['password'])
  t.notOk(discovery.keygate_email_code_endpoint)
})

t.test('password off: login and registration refused, e-mail codes work', async (t) => {
  const { app } = await issuerFixture(t, { env: { LOGIN_METHODS: 'email-code' } })
  const loginRes = await app.inject({
    method: 'POST',
    url: '/auth/login',
    payload: { email: 'a@example.com', password: 'whatever password' },
  })
  t.equal(loginRes.statusCode, 403)
  t.equal(loginRes.json().code, 'KG_LOGIN_METHOD_DISABLED')
  const registerRes = await app.inject({
    method: 'POST',
    url: '/auth/register',
    payload: { email: 'a@example.com', password: 'whatever password' },
  })
  t.equal(registerRes.statusCode, 403)
  t.equal(registerRes.json().code, 'KG_LOGIN_METHOD_DISABLED')
  t.same((await app.inject({ method: 'GET', url: '/auth/methods' })).json(), {
    methods: ['email-code'],
    registration: 'open',
  })
  const discovery = (await app.inject({ method: 'GET', url: '/.well-known/openid-configuration' })).json()
  t.same(discovery.keygate_login_methods_supported, ['email-code'])
  t.notOk(discovery.keygate_login_endpoint)
  t.notOk(discovery.registration_endpoint)
  t.ok(discovery.keygate_email_code_endpoint)
})

t.test('a code from the outbox logs into the same account as the password', async (t) => {
  const { app, config, logs } = await issuerFixture(t, { env: EMAIL_CODE })
  const userId = await register(app, 'ada@example.com')
  const byPassword = await login(app, 'ada@example.com')

  const res = await requestCode(app, ' Ada@Example.com ')
  t.equal(res.statusCode, 202)
  t.same(res.json(), { email: 'ada@example.com', expires_in: 600 })
  t.equal(res.headers['cache-control'], 'no-store')
  const code = await latestCode(app, config.DATA_DIR, 'ada@example.com')

  const ok = await verify(app, 'ada@example.com', code)
  t.equal(ok.statusCode, 200)
  t.same(Object.keys(ok.json()).sort(), Object.keys(byPassword.response.json()).sort(), 'the login answer')
  t.equal(claimsOf(ok.json().access_token).sub, userId, 'the same principal')
  t.same(
    ok.cookies.map((c) => c.name).sort(),
    byPassword.response.cookies.map((c) => c.name).sort(),
    'the same cookies',
  )
  t.ok(cookie(ok, 'kg_refresh')?.httpOnly)

  const replay = await verify(app, 'ada@example.com', code)
  t.equal(replay.statusCode, 401, 'single use')
  t.equal(replay.json().code, 'KG_EMAIL_CODE_INVALID')
  t.same(logs.find(code), [], 'the code is never logged')
  t.ok(logs.find('mail written to the outbox').length > 0, 'the log says where the mail went')
  assertNoSecretsLogged(t, logs, [code, ok.json().access_token])
})

t.test('the same answer whether or not the account exists; REGISTRATION follows', async (t) => {
  const closed = await issuerFixture(t, { env: { ...EMAIL_CODE, REGISTRATION: 'closed' } })
  // Registration is closed: the account is one an admin made.
  await closed.app.issuer.store.createUser({
    id: 'u-known',
    email: 'known@example.com',
    passwordHash: 'x',
    roles: ['user'],
    createdAt: 0,
    updatedAt: 0,
    disabledAt: null,
  })
  const known = await requestCode(closed.app, 'known@example.com')
  const unknown = await requestCode(closed.app, 'nobody@example.com')
  t.equal(unknown.statusCode, known.statusCode)
  t.same(unknown.json(), { ...known.json(), email: 'nobody@example.com' })
  t.same(Object.keys(unknown.headers).sort(), Object.keys(known.headers).sort())
  t.equal((await mailTo(closed.app, closed.config.DATA_DIR, 'known@example.com')).length, 1)
  t.equal(
    (await mailTo(closed.app, closed.config.DATA_DIR, 'nobody@example.com')).length,
    0,
    'no mail without an account while registration is closed',
  )
  t.equal(
    (await verify(closed.app, 'nobody@example.com', '000000')).json().code,
    'KG_EMAIL_CODE_INVALID',
    'and no code logs in',
  )
  t.equal(await closed.app.issuer.store.findUserByEmail('nobody@example.com'), undefined)

  const open = await issuerFixture(t, { env: EMAIL_CODE })
  t.equal((await requestCode(open.app, 'new@example.com')).statusCode, 202)
  const code = await latestCode(open.app, open.config.DATA_DIR, 'new@example.com')
  const res = await verify(open.app, 'new@example.com', code)
  t.equal(res.statusCode, 200, 'registration open: the code creates the account')
  const created = await open.app.issuer.store.findUserByEmail('new@example.com')
  t.equal(claimsOf(res.json().access_token).sub, created?.id)
  t.same(created?.roles, ['user'])
})

t.test('wrong, foreign, superseded, expired and exhausted codes', async (t) => {
  const { app, config, clock } = await issuerFixture(t, {
    env: { ...EMAIL_CODE, EMAIL_CODE_RATE_LIMIT_PER_EMAIL: '50/15m' },
  })
  await register(app, 'a@example.com')
  await register(app, 'b@example.com')
  const codeOf = async (email: string) => {
    t.equal((await requestCode(app, email)).statusCode, 202)
    return latestCode(app, config.DATA_DIR, email)
  }

  const forB = await codeOf('b@example.com')
  t.equal((await verify(app, 'a@example.com', forB)).statusCode, 401, "another address's code")

  const first = await codeOf('a@example.com')
  const second = await codeOf('a@example.com')
  if (first !== second) {
    t.equal((await verify(app, 'a@example.com', first)).statusCode, 401, 'a new code invalidates the old')
  }
  t.equal((await verify(app, 'a@example.com', second)).statusCode, 200)

  const expiring = await codeOf('a@example.com')
  clock.advance(10 * 60_000)
  t.equal((await verify(app, 'a@example.com', expiring)).statusCode, 401, 'expired after 10 minutes')

  const attacked = await codeOf('a@example.com')
  for (let i = 0; i < 5; i++) {
    const res = await verify(app, 'a@example.com', other(attacked), `198.51.100.${i}`)
    t.equal(res.json().code, 'KG_EMAIL_CODE_INVALID')
  }
  t.equal((await verify(app, 'a@example.com', attacked)).statusCode, 401, 'dead after 5 wrong tries')

  for (const [payload, why] of [
    [{ email: 'a@example.com', code: '12345' }, 'five digits'],
    [{ email: 'a@example.com', code: '1234567' }, 'seven digits'],
    [{ email: 'a@example.com', code: 'abcdef' }, 'letters'],
    [{ email: 'a@example.com', code: 123456 }, 'a number'],
    [{ email: 'not-an-email', code: '123456' }, 'a malformed e-mail'],
    [{ email: 'a@example.com' }, 'no code'],
    [{ email: 'a@example.com', code: '123456', extra: 1 }, 'an unknown field'],
  ] as const) {
    const res = await app.inject({ method: 'POST', url: '/auth/email-code/verify', payload })
    t.equal(res.statusCode, 400, why)
    t.equal(res.json().code, 'KG_INVALID_REQUEST', why)
  }
  const bad = await requestCode(app, 'not-an-email')
  t.equal(bad.statusCode, 400)
  t.equal(bad.json().code, 'KG_INVALID_REQUEST')
})

t.test('requests are limited per e-mail and per address', async (t) => {
  const { app, config, clock } = await issuerFixture(t, {
    env: {
      ...EMAIL_CODE,
      EMAIL_CODE_RATE_LIMIT_PER_EMAIL: '3/15m',
      EMAIL_CODE_RATE_LIMIT_PER_ADDRESS: '5/15m',
    },
  })
  await register(app, 'a@example.com')
  const statuses = []
  for (let i = 0; i < 4; i++)
    statuses.push((await requestCode(app, 'a@example.com', `192.0.2.${i}`)).statusCode)
  t.same(statuses, [202, 202, 202, 429], 'per e-mail, from any address')
  const refused = await requestCode(app, 'a@example.com', '192.0.2.9')
  t.equal(refused.json().code, 'KG_RATE_LIMITED')
  t.ok(Number(refused.headers['retry-after']) > 0)
  t.equal((await mailTo(app, config.DATA_DIR, 'a@example.com')).length, 3, 'the inbox got three codes')
  t.equal(
    (await verify(app, 'a@example.com', await latestCode(app, config.DATA_DIR, 'a@example.com'))).statusCode,
    200,
    'a refused request stored nothing: the last code sent still logs in',
  )

  const fromOne: number[] = []
  for (let i = 0; i < 6; i++)
    fromOne.push((await requestCode(app, `x${i}@example.com`, '192.0.2.50')).statusCode)
  t.same(fromOne, [202, 202, 202, 202, 202, 429], 'per address, whatever the e-mails')

  clock.advance(15 * 60_000)
  t.equal((await requestCode(app, 'a@example.com', '192.0.2.50')).statusCode, 202, 'a new window')
  t.ok(outboxFiles(config.DATA_DIR).every((file) => file.startsWith(join(config.DATA_DIR, 'outbox'))))
})

t.test('LOGIN_METHODS is checked at start', async (t) => {
  for (const value of ['', ' , ', 'password,sms', 'email']) {
    await t.rejects(issuerFixture(t, { env: { LOGIN_METHODS: value } }), /LOGIN_METHODS/, `"${value}"`)
  }
})
