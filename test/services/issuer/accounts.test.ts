/**
 * Accounts on their own: a real store (SQLite in a temp directory) and throttle, no HTTP. What the routes
 * add (status codes, bodies) is tested in routes/auth.test.ts and routes/admin.test.ts.
 */
import { join } from 'node:path'
import { Registry } from 'prom-client'
import t, { type Test } from 'tap'
import { Accounts, BOOTSTRAP_ADMIN_ROLES, DEFAULT_USER_ROLES } from '../../../services/issuer/accounts.js'
import { verifyPassword } from '../../../services/issuer/credentials.js'
import { KeyFile } from '../../../services/issuer/keys/key-file.js'
import { KeySet } from '../../../services/issuer/keys/key-set.js'
import { LoginThrottle } from '../../../services/issuer/login-throttle.js'
import { Revocations } from '../../../services/issuer/feed/revocations.js'
import { createIssuerMetrics, type IssuerMetrics } from '../../../services/issuer/metrics.js'
import { PasswordHashing } from '../../../services/issuer/password-hashing.js'
import { RegistrationThrottle } from '../../../services/issuer/registration-throttle.js'
import { openIssuerStore } from '../../../services/issuer/store/issuer-store.js'
import type { IssuerStore } from '../../../services/issuer/store/types.js'
import { captureLogs } from '../../helpers/logs.js'
import { FakeClock, PASSWORD, TEST_KEY_SCHEDULE, tempDir } from './fixtures.js'

const ADDRESS = '192.0.2.1'
const MAX_FAILURES_PER_ACCOUNT = 3

async function accountsFixture(t: Test) {
  const dir = tempDir(t)
  const store = await openIssuerStore(join(dir, 'issuer.db'))
  t.teardown(() => store.close())
  const clock = new FakeClock()
  // The key gauge reads the key set only when scraped, which these tests never do: it is never loaded.
  const keys = new KeySet({
    storage: new KeyFile(join(dir, 'keys')),
    schedule: TEST_KEY_SCHEDULE,
    now: clock.now,
  })
  const metrics = createIssuerMetrics(new Registry(), keys)
  // Every attempt here comes from one address: the (account, address) limit is the one met.
  const throttle = new LoginThrottle({
    maxFailuresPerAccountAndAddress: MAX_FAILURES_PER_ACCOUNT,
    maxFailuresPerAddress: 100,
    maxFailuresPerAccount: 100,
    backoffMs: 60_000,
    windowMs: 60_000,
    slowdownMaxMs: 0,
    counters: store.throttleCounters,
    now: clock.now,
  })
  const registrations = new RegistrationThrottle({
    counters: store.throttleCounters,
    max: 100,
    windowMs: 60_000,
    now: clock.now,
  })
  const accounts = new Accounts({
    store,
    throttle,
    registrations,
    hashing: new PasswordHashing(),
    revocations: new Revocations({ store, keepMs: 60_000, now: clock.now }),
    metrics,
    now: clock.now,
  })
  return { accounts, store, metrics, clock }
}

async function logins(metrics: IssuerMetrics, outcome: string): Promise<number> {
  const { values } = await metrics.logins.get()
  return values.find((v) => v.labels.outcome === outcome)?.value ?? 0
}

async function newSession(store: IssuerStore, userId: string, id: string, now: number) {
  await store.createSession(
    {
      id,
      userId,
      clientId: 'web',
      csrfHash: 'csrf',
      createdAt: now,
      idleExpiresAt: now + 60_000,
      absoluteExpiresAt: now + 120_000,
    },
    `${id}-token`,
  )
}

t.test(
  'create: a normalised e-mail, a hashed password, default or given roles without repeats',
  async (t) => {
    const { accounts, store, clock } = await accountsFixture(t)
    const user = await accounts.create('  Alice@Example.COM ', PASSWORD)
    t.equal(user.email, 'alice@example.com')
    t.same(user.roles, DEFAULT_USER_ROLES)
    t.equal(user.createdAt, clock.now())
    t.not(user.passwordHash, PASSWORD, 'never the password itself')
    t.ok(await verifyPassword(user.passwordHash, PASSWORD))
    t.same(await store.findUserById(user.id), user, 'stored as returned')
    const editor = await accounts.create('editor@example.com', PASSWORD, ['editor', 'user', 'editor'])
    t.same(editor.roles, ['editor', 'user'])
  },
)

t.test('create refuses a bad e-mail, a bad password and a taken e-mail with stable codes', async (t) => {
  const { accounts } = await accountsFixture(t)
  await t.rejects(accounts.create('not-an-address', PASSWORD), { code: 'KG_INVALID_REQUEST' })
  await t.rejects(accounts.create('bob@example.com', 'short'), {
    code: 'KG_INVALID_REQUEST',
    message: /8 to 128/,
  })
  await accounts.create('bob@example.com', PASSWORD)
  await t.rejects(accounts.create('BOB@example.com', PASSWORD), { code: 'KG_EMAIL_TAKEN' })
})

t.test('authenticate: a wrong password and an unknown account fail alike, and are counted', async (t) => {
  const { accounts, metrics } = await accountsFixture(t)
  const carol = await accounts.create('carol@example.com', PASSWORD)
  t.equal((await accounts.authenticate(' Carol@example.com', PASSWORD, ADDRESS)).id, carol.id)
  const wrong = await accounts.authenticate('carol@example.com', 'wrong password', ADDRESS).catch((e) => e)
  const unknown = await accounts.authenticate('nobody@example.com', PASSWORD, ADDRESS).catch((e) => e)
  t.match(wrong, { code: 'KG_INVALID_CREDENTIALS', statusCode: 401 })
  t.same([unknown.code, unknown.message, unknown.statusCode], [wrong.code, wrong.message, wrong.statusCode])
  t.equal(await logins(metrics, 'success'), 1)
  t.equal(await logins(metrics, 'invalid_credentials'), 2)
})

t.test('authenticate is throttled per account, known or not; a success clears the count', async (t) => {
  const { accounts, metrics } = await accountsFixture(t)
  await accounts.create('dave@example.com', PASSWORD)
  for (let i = 0; i < MAX_FAILURES_PER_ACCOUNT - 1; i++) {
    await t.rejects(accounts.authenticate('dave@example.com', 'wrong password', ADDRESS))
  }
  await accounts.authenticate('dave@example.com', PASSWORD, ADDRESS)
  for (let i = 0; i < MAX_FAILURES_PER_ACCOUNT; i++) {
    await t.rejects(accounts.authenticate('dave@example.com', 'wrong password', ADDRESS), {
      code: 'KG_INVALID_CREDENTIALS',
    })
  }
  const throttled = await accounts.authenticate('dave@example.com', PASSWORD, ADDRESS).catch((e) => e)
  t.match(throttled, { code: 'KG_LOGIN_THROTTLED', statusCode: 429 }, 'even the right password waits')
  t.match(throttled.headers['retry-after'], /^\d+$/)
  for (let i = 0; i < MAX_FAILURES_PER_ACCOUNT; i++) {
    await t.rejects(accounts.authenticate('ghost@example.com', 'wrong password', ADDRESS))
  }
  await t.rejects(accounts.authenticate('ghost@example.com', 'wrong password', ADDRESS), {
    code: 'KG_LOGIN_THROTTLED',
  })
  t.equal(await logins(metrics, 'throttled'), 2)
})

t.test(
  'changePassword checks the current one, then revokes every session and records the event',
  async (t) => {
    const { accounts, store, clock } = await accountsFixture(t)
    const erin = await accounts.create('erin@example.com', PASSWORD)
    await newSession(store, erin.id, 'session-1', clock.now())
    await newSession(store, erin.id, 'session-2', clock.now())
    await t.rejects(accounts.changePassword('no-such-user', PASSWORD, 'another horse battery', ADDRESS), {
      code: 'KG_USER_NOT_FOUND',
    })
    await t.rejects(accounts.changePassword(erin.id, 'not the password', 'another horse battery', ADDRESS), {
      code: 'KG_INVALID_CREDENTIALS',
      message: 'The current password is wrong',
    })
    await t.rejects(accounts.changePassword(erin.id, PASSWORD, 'short', ADDRESS), {
      code: 'KG_INVALID_REQUEST',
    })
    t.same(await store.listRevocations(0, 10), [], 'nothing changed by a refused change')

    clock.advance(1000)
    await accounts.changePassword(erin.id, PASSWORD, 'another horse battery', ADDRESS)
    await t.rejects(accounts.authenticate('erin@example.com', PASSWORD, ADDRESS), {
      code: 'KG_INVALID_CREDENTIALS',
    })
    t.equal((await accounts.authenticate('erin@example.com', 'another horse battery', ADDRESS)).id, erin.id)
    t.same(
      (await store.listSessions(erin.id)).map((s) => [s.revokedAt, s.revokedReason]),
      [
        [clock.now(), 'password_change'],
        [clock.now(), 'password_change'],
      ],
    )
    t.match(await store.listRevocations(0, 10), [
      { type: 'user', subject: erin.id, issuedBefore: clock.now() },
    ])
  },
)

t.test('get, list and setRoles', async (t) => {
  const { accounts, clock } = await accountsFixture(t)
  const first = await accounts.create('first@example.com', PASSWORD)
  clock.advance(1)
  const second = await accounts.create('second@example.com', PASSWORD)
  t.same(await accounts.get(first.id), first)
  await t.rejects(accounts.get('no-such-user'), { code: 'KG_USER_NOT_FOUND' })
  t.same(
    (await accounts.list(10, 0)).map((u) => u.id),
    [first.id, second.id],
    'oldest first',
  )
  t.same(
    (await accounts.list(1, 1)).map((u) => u.id),
    [second.id],
  )
  clock.advance(5)
  const updated = await accounts.setRoles(second.id, ['admin', 'user', 'admin'])
  t.same(updated.roles, ['admin', 'user'])
  t.equal(updated.updatedAt, clock.now())
  await t.rejects(accounts.setRoles('no-such-user', ['admin']), { code: 'KG_USER_NOT_FOUND' })
})

t.test('bootstrapAdmin creates the configured admin once, and names a bad setting', async (t) => {
  const { accounts, store } = await accountsFixture(t)
  const logs = captureLogs('issuer')
  await accounts.bootstrapAdmin(undefined, undefined, logs.logger)
  await accounts.bootstrapAdmin('root@example.com', undefined, logs.logger)
  t.equal(await store.findUserByEmail('root@example.com'), undefined, 'nothing without both settings')

  await accounts.bootstrapAdmin('Root@Example.com', PASSWORD, logs.logger)
  const admin = await store.findUserByEmail('root@example.com')
  t.same(admin?.roles, BOOTSTRAP_ADMIN_ROLES)
  t.equal(logs.find('created the admin account').length, 1)
  t.same(logs.find(PASSWORD), [], 'the password is never logged')
  await accounts.bootstrapAdmin('root@example.com', 'a different password', logs.logger)
  t.equal(
    (await store.findUserByEmail('root@example.com'))?.passwordHash,
    admin?.passwordHash,
    'left alone once it exists',
  )

  await t.rejects(accounts.bootstrapAdmin('not-an-address', PASSWORD, logs.logger), {
    message: /KEYGATE_ADMIN_EMAIL/,
  })
  await t.rejects(accounts.bootstrapAdmin('other@example.com', 'short', logs.logger), {
    message: /KEYGATE_ADMIN_PASSWORD/,
  })
})
