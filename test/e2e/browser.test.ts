/**
 * The demo app in a real Chromium (Debian's package, driven by playwright-core; no browser is downloaded)
 * against the whole system started as `npm start` starts it, on free ports. Access tokens live 5 s here, so
 * every test also runs through silent refreshes.
 *
 * Without Chromium the file is skipped with a message, unless KEYGATE_REQUIRE_CHROMIUM=1 (CI installs it).
 * Screenshots of each page go to .tap/screenshots/.
 */
import { existsSync, mkdirSync } from 'node:fs'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { buildClient } from '../../client/build.js'
import { HttpClient, startSystem } from '../helpers/system.js'

const CHROMIUM = process.env.KEYGATE_CHROMIUM ?? '/usr/bin/chromium'
/** The flags Chromium needs on a machine without a network outside and without a sandbox for root. */
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]
const SCREENSHOTS = new URL('../../.tap/screenshots/', import.meta.url).pathname
const ADMIN = { email: 'admin@example.com', password: 'admin passphrase 1' }
const PASSWORD = 'correct horse battery'
/** How long before its expiry a token may still be sent (leaving time for it to travel), in ms. */
const SAFE_MARGIN_MS = 500
/** How long a logout may take to reach another tab of the same browser. */
const CROSS_TAB_MS = 1000
/** How long an admin's revocation may take to reach the gateway on a loaded machine, in ms. */
const REVOCATION_DEADLINE_MS = 15_000

interface User {
  email: string
  password: string
}

/** Why the browser tests cannot run here, or false; throws when Chromium is required (CI). */
function chromiumUnavailable(): string | false {
  if (existsSync(CHROMIUM)) return false
  const why = `Chromium not found at ${CHROMIUM}; install Debian's chromium (apt-get install -y chromium)`
  if (process.env.KEYGATE_REQUIRE_CHROMIUM === '1') throw new Error(`${why} (KEYGATE_REQUIRE_CHROMIUM=1)`)
  return `skipping the browser tests: ${why}`
}

// One system and one browser for six scenarios with real waits: more than the default two minutes on a
// loaded machine.
t.setTimeout(600_000)
t.test('the demo app in Chromium', { skip: chromiumUnavailable() }, browserTests)

async function browserTests(t: Test): Promise<void> {
  await buildClient()
  mkdirSync(SCREENSHOTS, { recursive: true })
  const system = await startSystem({
    env: {
      ACCESS_TOKEN_TTL: '5s',
      // Expired means expired: a missed refresh would show up as a 401, not be hidden by the tolerance.
      CLOCK_TOLERANCE: '1s',
      REVOCATION_FEED: 'on',
      KEYGATE_ADMIN_EMAIL: ADMIN.email,
      KEYGATE_ADMIN_PASSWORD: ADMIN.password,
    },
  })
  t.teardown(() => system.stop())
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS })
  t.teardown(() => browser.close())
  const gateway = system.urls.gateway
  const api = new HttpClient(gateway)
  const register = async (email: string): Promise<User> => {
    const user = { email, password: PASSWORD }
    const r = await api.call('POST', '/auth/register', { body: user })
    if (r.status !== 202) throw new Error(`register ${email}: ${r.status} ${r.text}`)
    return user
  }
  const open = (browser: Browser) => openSession(browser, gateway)

  t.test('register, log in, every page, reload keeps the session; no token in storage', async (t) => {
    const session = await open(browser)
    t.teardown(() => session.context.close())
    const { page } = session
    await page.goto(`${gateway}/`)
    await loggedOut(page)
    await screenshot(page, 'account')

    const ada = { email: 'ada@example.com', password: PASSWORD }
    await page.fill('#register-form input[name=email]', ada.email)
    await page.fill('#register-form input[name=password]', ada.password)
    await page.click('#register-form button')
    await page.waitForSelector('#message:has-text("Registered ada@example.com")')
    await logIn(page, ada)

    await page.fill('#profile-form input[name=displayName]', 'Ada Lovelace')
    await page.click('#profile-form button')
    await page.waitForSelector('#profile-display-name:has-text("Ada Lovelace")')
    await page.waitForSelector('#session-status:has-text("Logged in as Ada Lovelace")')
    await screenshot(page, 'profile')

    await page.reload()
    await page.waitForSelector('#session-status[data-status="logged-in"]')
    await page.waitForSelector('#profile-display-name:has-text("Ada Lovelace")')
    t.ok(await page.isHidden('#account-page'), 'after a reload the session is back without a login form')

    await page.goto(`${gateway}/#orders`)
    await page.fill('#order-form input[name=item]', 'Analytical Engine')
    await page.fill('#order-form input[name=quantity]', '2')
    await page.click('#order-form button')
    await page.waitForSelector('#orders-list td:has-text("Analytical Engine")')
    t.ok(
      await page.isVisible('#orders-list td:has-text("Ada Lovelace")'),
      'orders got the name from profile on Ada’s behalf',
    )
    await screenshot(page, 'orders')

    await page.goto(`${gateway}/#files`)
    await page.setInputFiles('#file-form input[name=file]', {
      name: 'notes.txt',
      mimeType: 'text/plain',
      buffer: Buffer.from('first notes'),
    })
    t.equal(await page.inputValue('#file-form input[name=name]'), 'notes.txt', 'the name follows the file')
    await page.click('#file-form button')
    await page.waitForSelector('#files-list td:has-text("notes.txt")')
    await page.click('#files-list button:has-text("One-time link")')
    const link = await page.getAttribute('#file-link-url', 'href')
    await screenshot(page, 'files')
    const first = await request(link!)
    t.equal(first.statusCode, 200, 'the one-time link downloads without a login')
    t.equal(await first.body.text(), 'first notes')
    const second = await request(link!)
    await second.body.dump()
    t.equal(second.statusCode, 410, 'and only once')

    t.equal(await page.getAttribute('#message', 'data-kind'), 'info', 'no error was shown on the way')
    await noTokenInStorage(t, session)
  })

  t.test('short-lived tokens: calls keep working across several expiries', async (t) => {
    const user = await register('grace@example.com')
    const session = await open(browser)
    t.teardown(() => session.context.close())
    const { page } = session
    await page.goto(`${gateway}/#orders`)
    await logIn(page, user)

    const started = Date.now()
    while (Date.now() - started < 16_000) {
      const answered = page.waitForResponse((r) => r.url().endsWith('/api/orders'))
      await page.click('#orders-reload')
      t.equal((await answered).status(), 200, `orders at +${Date.now() - started} ms`)
      await page.waitForTimeout(700)
    }
    const refreshes = Number(await page.textContent('#refresh-count'))
    t.ok(refreshes >= 3, `the token was renewed silently across the expiries (${refreshes} refreshes)`)
    t.same(session.unauthorized, [], 'no call was ever refused: every token was renewed before it expired')
    const margins = session.apiCalls.map((call) => call.expiresAt - call.at)
    t.ok(session.apiCalls.length >= 20, `${session.apiCalls.length} calls`)
    t.ok(
      Math.min(...margins) >= SAFE_MARGIN_MS,
      `every call carried a token valid for ${SAFE_MARGIN_MS} ms more at least (${Math.min(...margins)} ms)`,
    )
    t.equal(await page.getAttribute('#session-status', 'data-status'), 'logged-in')
    t.equal(await page.getAttribute('#message', 'data-kind'), 'info', 'no error was shown')
    await noTokenInStorage(t, session)
  })

  t.test('two tabs refreshing at the same moment both stay logged in', async (t) => {
    const user = await register('tabs@example.com')
    const session = await open(browser)
    t.teardown(() => session.context.close())
    const [one, two] = [session.page, await session.context.newPage()]
    await one.goto(`${gateway}/#orders`)
    await logIn(one, user)
    await two.goto(`${gateway}/#orders`)
    await two.waitForSelector('#session-status[data-status="logged-in"]')
    t.equal(await two.textContent('#lock-kind'), 'Web Locks', 'the tabs share a Web Lock')

    const before = await refreshOutcomes(system.opsUrls.issuer)
    for (let round = 0; round < 3; round++) {
      await Promise.all([one.click('#refresh-now'), two.click('#refresh-now')])
    }
    // Then both tabs idle through two expiries: their timers fire together, and one refresh serves both.
    await one.waitForTimeout(10_000)
    for (const page of [one, two]) {
      t.equal(await page.getAttribute('#session-status', 'data-status'), 'logged-in', 'still logged in')
      const answered = page.waitForResponse((r) => r.url().endsWith('/api/orders'))
      await page.click('#orders-reload')
      t.equal((await answered).status(), 200, 'and calls work')
    }
    const after = await refreshOutcomes(system.opsUrls.issuer)
    const delta = (outcome: string) => (after[outcome] ?? 0) - (before[outcome] ?? 0)
    t.equal(delta('reused'), 0, 'no refresh token was ever presented twice …')
    t.equal(delta('grace'), 0, '… not even within the grace window: the tabs took turns')
    t.ok(delta('rotated') >= 6, `every click refreshed, one tab at a time (${delta('rotated')} refreshes)`)
    const relayed =
      Number(await one.textContent('#relayed-count')) + Number(await two.textContent('#relayed-count'))
    t.ok(relayed > 0, `the tabs passed fresh tokens to each other (${relayed} times)`)
    t.same(session.unauthorized, [], 'no call was refused')
    await noTokenInStorage(t, session)
  })

  t.test('logout in one tab logs out the other within a second', async (t) => {
    const user = await register('logout@example.com')
    const session = await open(browser)
    t.teardown(() => session.context.close())
    const [one, two] = [session.page, await session.context.newPage()]
    await one.goto(`${gateway}/`)
    await logIn(one, user)
    await two.goto(`${gateway}/#files`)
    await two.waitForSelector('#session-status[data-status="logged-in"]')

    // Timed inside the pages (the tabs share the browser's clock): from the click to the other tab's change.
    await two.evaluate(() => {
      const status = document.getElementById('session-status')!
      const page = window as any
      new MutationObserver(() => {
        if (status.dataset.status === 'logged-out') page.loggedOutAt ??= Date.now()
      }).observe(status, { attributes: true })
    })
    await one.evaluate(() => {
      const page = window as any
      document.getElementById('logout')!.addEventListener('click', () => (page.clickedAt = Date.now()))
    })
    await one.bringToFront()
    await one.click('#logout')
    await loggedOut(one)
    await two.waitForSelector('#session-status[data-status="logged-out"]')
    const elapsed =
      (await two.evaluate(() => (window as any).loggedOutAt as number)) -
      (await one.evaluate(() => (window as any).clickedAt as number))
    t.ok(elapsed < CROSS_TAB_MS, `the other tab logged out ${elapsed} ms after the click`)
    t.match(await two.textContent('#message'), /You logged out\. \(in another tab\)/)
    t.ok(await two.isVisible('#login-form'), 'and shows the login form')
    await screenshot(two, 'logged-out')
    await two.reload()
    await loggedOut(two)
    t.pass('a reload does not bring the session back')
  })

  t.test('after logout-all a second browser context is logged out on its next call', async (t) => {
    const user = await register('everywhere@example.com')
    const laptop = await open(browser)
    const phone = await open(browser)
    t.teardown(() => Promise.all([laptop.context.close(), phone.context.close()]))
    await laptop.page.goto(`${gateway}/#orders`)
    await logIn(laptop.page, user)
    await phone.page.goto(`${gateway}/#orders`)
    await logIn(phone.page, user)

    await laptop.page.click('#logout-all')
    await loggedOut(laptop.page)
    t.match(await laptop.page.textContent('#message'), /You logged out everywhere/)
    t.equal(
      await phone.page.getAttribute('#session-status', 'data-status'),
      'logged-in',
      'another browser has no channel to this one: it learns on its next call',
    )
    // The revocation reaches the gateway within about a second (the issuer's feed).
    await phone.page.waitForTimeout(1000)
    await phone.page.click('#orders-reload')
    await phone.page.waitForSelector('#session-status[data-status="logged-out"]', { timeout: 5000 })
    t.match(await phone.page.textContent('#message'), /Your session ended/)
    t.ok(await phone.page.isVisible('#login-form'))
  })

  t.test('admin: key states and rotation, users and their sessions, revoking one', async (t) => {
    const victim = await register('revoked@example.com')
    const bob = await open(browser)
    const admin = await open(browser)
    t.teardown(() => Promise.all([bob.context.close(), admin.context.close()]))
    // Bob's page runs on a clock the test can stop: with 5 s tokens his silent refresh would otherwise race
    // the admin's click and the test's own (logged out before his "next call", or a call made before the
    // revocation arrived). Until it is paused the clock runs as the real one does.
    await bob.context.clock.install()
    await bob.page.goto(`${gateway}/#orders`)
    await logIn(bob.page, victim)
    t.ok(await bob.page.isHidden('#nav-admin'), 'no admin page for a user')

    const { page } = admin
    await page.goto(`${gateway}/#admin`)
    await logIn(page, ADMIN)
    await page.waitForSelector('#keys-list td:has-text("active")')
    const keysBefore = await page.textContent('#keys-list')
    await page.click('#keys-rotate')
    await page.waitForSelector('#message:has-text("Keys rotated")')
    t.not(await page.textContent('#keys-list'), keysBefore, 'the key states changed')
    t.ok(await page.isVisible('#keys-list td:has-text("retired")'), 'the old key is retired, still published')

    await page.click(`#users-list tr:has-text("${victim.email}") button:has-text("Sessions")`)
    await page.waitForSelector('#sessions-list button:has-text("Revoke")')
    await screenshot(page, 'admin')
    // From here Bob's page does nothing on its own (no silent refresh): his next call is the one below. The
    // pause is a second ahead of the page's clock as read here: pauseAt can only go forward, and the page's
    // clock moves on between the read and the pause (by how much depends on the machine's load).
    await bob.page.clock.pauseAt((await bob.page.evaluate(() => Date.now())) + 1_000)
    await page.click('#sessions-list button:has-text("Revoke")')
    await page.waitForSelector('#message:has-text("revoked")')
    t.ok(
      await page.isVisible('#sessions-list td:has-text("revoked (admin)")'),
      'the message comes once the list shows the session revoked',
    )

    // Instead of a guessed pause: the gateway refuses the access token Bob's page holds (revoked — or expired,
    // and then only the refresh below decides) before his next call is made.
    const bobsToken = [...bob.accessTokens].at(-1)!
    const deadline = Date.now() + REVOCATION_DEADLINE_MS
    let status = 200
    while (status !== 401 && Date.now() < deadline) {
      const res = await request(`${gateway}/api/orders`, {
        headers: { authorization: `Bearer ${bobsToken}` },
      })
      await res.body.dump()
      status = res.statusCode
      if (status !== 401) await new Promise((r) => setTimeout(r, 100))
    }
    t.equal(status, 401, 'the gateway refuses the token of the revoked session')
    t.ok(await bob.page.isVisible('#orders-reload'), 'Bob still sees his orders until his next call')
    await bob.page.click('#orders-reload')
    // The call is refused, its one refresh too (the session is revoked): logged out, without any timer.
    await bob.page.waitForSelector('#session-status[data-status="logged-out"]', { timeout: 15_000 })
    t.pass('the revoked session’s browser is logged out on its next call')
  })
}

interface BrowserSession {
  context: BrowserContext
  page: Page
  /** Every access token the issuer handed to this browser (login and refresh answers). */
  accessTokens: Set<string>
  /** Every API call: when it was sent, and until when its token was valid. */
  apiCalls: Array<{ url: string; at: number; expiresAt: number }>
  /** API calls answered 401. */
  unauthorized: string[]
}

/** A fresh browser context (its own cookie jar: another browser, as far as the site can tell). */
async function openSession(browser: Browser, gateway: string): Promise<BrowserSession> {
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 } })
  const session: BrowserSession = {
    context,
    page: await context.newPage(),
    accessTokens: new Set(),
    apiCalls: [],
    unauthorized: [],
  }
  context.on('request', (r) => {
    const bearer = /^Bearer (.+)$/.exec(r.headers().authorization ?? '')?.[1]
    if (!bearer || !r.url().startsWith(`${gateway}/api/`)) return
    const { exp } = JSON.parse(Buffer.from(bearer.split('.')[1]!, 'base64url').toString()) as { exp: number }
    session.apiCalls.push({ url: r.url(), at: Date.now(), expiresAt: exp * 1000 })
  })
  context.on('response', async (r) => {
    const path = new URL(r.url()).pathname
    if (path.startsWith('/api/') && r.status() === 401)
      session.unauthorized.push(`${r.request().method()} ${path}`)
    if ((path === '/auth/login' || path === '/auth/refresh') && r.ok()) {
      const body = (await r.json().catch(() => ({}))) as { access_token?: string }
      if (body.access_token) session.accessTokens.add(body.access_token)
    }
  })
  return session
}

async function logIn(page: Page, user: User): Promise<void> {
  await page.fill('#login-form input[name=email]', user.email)
  await page.fill('#login-form input[name=password]', user.password)
  await page.click('#login-form button')
  await page.waitForSelector('#session-status[data-status="logged-in"]')
}

async function loggedOut(page: Page): Promise<void> {
  await page.waitForSelector('#session-status[data-status="logged-out"]')
  await page.waitForSelector('#login-form', { state: 'visible' })
}

async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: `${SCREENSHOTS}${name}.png`, fullPage: true })
}

/**
 * Neither kind of token is in localStorage, sessionStorage or `document.cookie` of any page of the session.
 * (`document.cookie` does hold `kg_csrf`: the CSRF token is readable on purpose and is neither token.)
 */
async function noTokenInStorage(t: Test, session: BrowserSession): Promise<void> {
  const cookies = await session.context.cookies()
  const refresh = cookies.find((c) => c.name === 'kg_refresh')
  t.ok(refresh, 'the browser holds a refresh cookie')
  t.match(refresh, { httpOnly: true, secure: true, sameSite: 'Strict', path: '/auth' }, 'HttpOnly, on /auth')
  t.ok(session.accessTokens.size > 0, `${session.accessTokens.size} access tokens were handed out`)
  const secrets = [...session.accessTokens, refresh!.value]
  for (const page of session.context.pages()) {
    const stores = await page.evaluate(() => ({
      localStorage: JSON.stringify({ ...localStorage }),
      sessionStorage: JSON.stringify({ ...sessionStorage }),
      cookie: document.cookie,
    }))
    t.match(stores.cookie, /kg_csrf=/, 'the readable CSRF cookie is there, as designed')
    for (const [where, content] of Object.entries(stores)) {
      t.notOk(
        secrets.some((secret) => content.includes(secret)),
        `no access or refresh token in ${where} of ${page.url()}`,
      )
    }
  }
}

/** The issuer's refresh outcomes, read from `/metrics` on its ops listener. */
async function refreshOutcomes(issuerOps: string): Promise<Record<string, number>> {
  const text = await (await request(`${issuerOps}/metrics`)).body.text()
  const outcomes: Record<string, number> = { reused: 0, grace: 0, rotated: 0 }
  for (const m of text.matchAll(/^keygate_issuer_refreshes_total\{[^}]*outcome="(\w+)"[^}]*\} (\d+)/gm)) {
    outcomes[m[1]!] = Number(m[2])
  }
  return outcomes
}
