/**
 * The outage story of issue 16: people log in through an external identity provider (a process of its own,
 * with its own keys) and create orders; the provider goes down; the operator restarts the issuer with
 * LOGIN_METHODS=email-code REGISTRATION=closed; the same people log in with a code from their e-mail (the
 * outbox: no SMTP configured) and see the same orders; password login and registration are refused.
 */
import { readFileSync } from 'node:fs'
import t from 'tap'
import { codeIn, outboxFiles } from '../services/issuer/mail-outbox.js'
import { EXTERNAL_IDP_AUDIENCE, startExternalIdp } from '../helpers/external-idp.js'
import { startProcesses } from '../helpers/processes.js'
import { HttpClient } from '../helpers/system.js'

const PEOPLE = [
  { sub: 'idp|ada', email: 'ada@example.com', item: 'Analytical Engine' },
  { sub: 'idp|bob', email: 'bob@example.com', item: 'Difference Engine' },
]

/** The newest login code in the outbox for `email`, once one is there. */
async function codeFor(dataDir: string, email: string): Promise<string> {
  for (;;) {
    const messages = outboxFiles(dataDir)
      .map((file) => readFileSync(file, 'utf8'))
      .filter((message) => message.includes(`To: ${email}`))
    const code = codeIn(messages.at(-1) ?? '')
    if (code) return code
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

t.test('the front-door provider goes down: same people, same accounts, same orders', async (t) => {
  const idp = await startExternalIdp()
  t.teardown(() => idp.stop())
  const system = await startProcesses({
    components: ['issuer', 'gateway', 'profile', 'orders'],
    env: {
      LOGIN_METHODS: 'password,external',
      REGISTRATION: 'open',
      EXTERNAL_ISSUERS: JSON.stringify([
        { issuer: idp.url, jwks_uri: idp.jwksUri, audience: EXTERNAL_IDP_AUDIENCE, trusted_for_email: true },
      ]),
    },
  })
  t.teardown(() => system.stop())

  const before = new Map<string, { sub: string; orderId: string }>()
  for (const person of PEOPLE) {
    const browser = new HttpClient(system.urls.gateway)
    let r = await browser.call('POST', '/auth/external', {
      body: { token: await idp.token(person.sub, person.email) },
    })
    t.equal(r.status, 200, `${person.email} logs in through the provider`)
    t.ok(browser.cookies.has('kg_refresh'), 'with a keygate session')
    const token = r.json.access_token as string
    r = await browser.call('POST', '/api/orders', { token, body: { item: person.item, quantity: 1 } })
    t.equal(r.status, 201, 'and creates an order')
    before.set(person.email, { sub: r.json.owner as string, orderId: r.json.id as string })
  }

  // The provider is down; the operator restarts the issuer with another environment.
  await idp.stop()
  await system.kill('issuer')
  system.env.LOGIN_METHODS = 'email-code'
  system.env.REGISTRATION = 'closed'
  await system.start('issuer')

  const anyone = new HttpClient(system.urls.gateway)
  let r = await anyone.call('GET', '/auth/methods')
  t.same(
    r.json,
    { methods: ['email-code'], registration: 'closed' },
    'the login page offers e-mail codes only',
  )
  r = await anyone.call('POST', '/auth/login', {
    body: { email: 'ada@example.com', password: 'any password 1' },
  })
  t.equal(r.status, 403, 'password login is refused')
  t.equal(r.json.code, 'KG_LOGIN_METHOD_DISABLED')
  r = await anyone.call('POST', '/auth/register', {
    body: { email: 'eve@example.com', password: 'any password 1' },
  })
  t.equal(r.status, 403, 'registration is refused')
  t.equal(r.json.code, 'KG_REGISTRATION_CLOSED')
  r = await anyone.call('POST', '/auth/external', { body: { token: 'x.y.z' } })
  t.equal(r.json.code, 'KG_LOGIN_METHOD_DISABLED', 'external tokens are refused')

  for (const person of PEOPLE) {
    const browser = new HttpClient(system.urls.gateway)
    r = await browser.call('POST', '/auth/email-code', { body: { email: person.email } })
    t.equal(r.status, 202, `${person.email} asks for a code`)
    const code = await codeFor(system.dataDir, person.email)
    r = await browser.call('POST', '/auth/email-code/verify', { body: { email: person.email, code } })
    t.equal(r.status, 200, 'and logs in with it')
    const token = r.json.access_token as string
    r = await browser.call('GET', '/api/orders', { token })
    t.equal(r.status, 200)
    const orders = r.json.orders as { id: string; owner: string; item: string }[]
    t.same(
      orders.map((o) => [o.id, o.owner, o.item]),
      [[before.get(person.email)!.orderId, before.get(person.email)!.sub, person.item]],
      'the same account sees the same orders',
    )
  }

  r = await anyone.call('POST', '/auth/email-code', { body: { email: 'eve@example.com' } })
  t.equal(r.status, 202, 'a stranger gets the same answer')
  t.notOk(
    outboxFiles(system.dataDir).some((file) => readFileSync(file, 'utf8').includes('To: eve@example.com')),
    'but no code: registration is closed',
  )
})
