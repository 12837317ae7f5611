import t from 'tap'
import { issuerFixture, PASSWORD } from './fixtures.js'

type App = Awaited<ReturnType<typeof issuerFixture>>['app']

const registerFrom = (app: App, email: string, remoteAddress: string) =>
  app.inject({ method: 'POST', url: '/auth/register', remoteAddress, payload: { email, password: PASSWORD } })

t.test('registration is throttled per address; new and taken e-mails count alike', async (t) => {
  const { app, clock } = await issuerFixture(t, { env: { REGISTRATION_RATE_LIMIT: '3/1m' } })
  const statuses: number[] = []
  for (const email of ['a@example.com', 'b@example.com', 'a@example.com']) {
    statuses.push((await registerFrom(app, email, '203.0.113.5')).statusCode)
  }
  t.same(statuses, [202, 202, 202])
  clock.advance(10_000)
  const refused = await registerFrom(app, 'c@example.com', '203.0.113.5')
  t.equal(refused.statusCode, 429)
  t.equal(refused.json().code, 'KG_RATE_LIMITED')
  t.match(refused.json().message, /registrations from this address/)
  t.equal(refused.headers['retry-after'], '50', 'until the window that began with the first one ends')
  t.equal(await app.issuer.store.findUserByEmail('c@example.com'), undefined, 'nothing was created')

  t.equal((await registerFrom(app, 'c@example.com', '203.0.113.6')).statusCode, 202, 'other addresses')
  t.equal(
    (await registerFrom(app, 'd@example.com', '203.0.113.5')).statusCode,
    429,
    'a refused attempt does not extend or reset the window',
  )
  clock.advance(50_000)
  t.equal((await registerFrom(app, 'd@example.com', '203.0.113.5')).statusCode, 202, 'a new window')

  const invalid = await app.inject({
    method: 'POST',
    url: '/auth/register',
    remoteAddress: '203.0.113.7',
    payload: { email: 'not-an-email', password: PASSWORD },
  })
  t.equal(invalid.statusCode, 400, 'invalid input is refused before it is counted (no hash is made)')
})
