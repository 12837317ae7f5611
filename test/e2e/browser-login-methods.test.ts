/**
 * The demo app in Chromium with LOGIN_METHODS=email-code (the front-door provider is down): only the e-mail
 * code form is offered, a wrong code gets a readable message, the code from the outbox logs in, and the
 * status line names the person by e-mail, not by id. Skipped without Chromium (see browser.test.ts).
 */
import { existsSync, readFileSync } from 'node:fs'
import { chromium } from 'playwright-core'
import t from 'tap'
import { buildClient } from '../../client/build.js'
import { HttpClient, startSystem } from '../helpers/system.js'
import { codeIn, outboxFiles } from '../services/issuer/mail-outbox.js'

const CHROMIUM = process.env.KEYGATE_CHROMIUM ?? '/usr/bin/chromium'
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run']
const ADMIN = { email: 'admin@example.com', password: 'admin passphrase 1' }

function chromiumUnavailable(): string | false {
  if (existsSync(CHROMIUM)) return false
  const why = `Chromium not found at ${CHROMIUM}; install Debian's chromium (apt-get install -y chromium)`
  if (process.env.KEYGATE_REQUIRE_CHROMIUM === '1') throw new Error(`${why} (KEYGATE_REQUIRE_CHROMIUM=1)`)
  return `skipping the browser tests: ${why}`
}

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

t.setTimeout(300_000)
t.test('e-mail code login in the demo app', { skip: chromiumUnavailable() }, async (t) => {
  await buildClient()
  const system = await startSystem({
    env: {
      LOGIN_METHODS: 'email-code',
      REGISTRATION: 'closed',
      KEYGATE_ADMIN_EMAIL: ADMIN.email,
      KEYGATE_ADMIN_PASSWORD: ADMIN.password,
    },
  })
  t.teardown(() => system.stop())
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS })
  t.teardown(() => browser.close())
  const page = await (await browser.newContext()).newPage()
  await page.goto(`${system.urls.gateway}/`)

  await page.waitForSelector('#code-request-form', { state: 'visible' })
  t.notOk(await page.isVisible('#login-form'), 'no password form')
  t.notOk(await page.isVisible('#register-form'), 'no registration form')
  t.notOk(await page.isVisible('#external-form'), 'no external form')
  t.match(await page.textContent('#methods-note'), /Password login is switched off/)

  await page.fill('#code-request-form input[name=email]', 'Admin@Example.com')
  await page.click('#code-request-form button')
  await page.waitForSelector('#code-verify-form', { state: 'visible' })
  t.match(await page.textContent('#message'), /If admin@example\.com has an account, a code is on its way/)
  const code = await codeFor(system.dataDir, ADMIN.email)

  const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, '0')
  await page.fill('#code-verify-form input[name=code]', wrong)
  await page.click('#code-verify-form button')
  await page.waitForSelector('#message[data-kind="error"]')
  t.equal(await page.getAttribute('#message', 'data-code'), 'KG_EMAIL_CODE_INVALID')
  t.match(await page.textContent('#message'), /That code is wrong, expired or already used/)

  await page.fill('#code-verify-form input[name=code]', code)
  await page.click('#code-verify-form button')
  await page.waitForSelector('#session-status[data-status="logged-in"]')
  await page.waitForSelector('#session-status:has-text("Logged in as admin@example.com")')
  t.notMatch(await page.textContent('#session-status'), /[0-9a-f]{8}-[0-9a-f]{4}-/, 'no raw id')

  // The same account as by password before: the admin's role came along.
  await page.waitForSelector('#nav-admin', { state: 'visible' })
  const api = new HttpClient(system.urls.gateway)
  const r = await api.call('POST', '/auth/login', { body: ADMIN })
  t.equal(r.json.code, 'KG_LOGIN_METHOD_DISABLED', 'and password login stays off')
})
