/**
 * Hostile use of sessions, against the real issuer behind the real gateway (each its own process): refresh
 * token reuse (RFC 9700 §4.14.2), refresh after logout, logout-all and a password change, cross-site and
 * CSRF-less refresh and logout (OWASP CSRF cheat sheet: double submit, Origin, Fetch metadata), and password
 * guessing (OWASP authentication cheat sheet: per-account and per-address throttling, the same answer whether
 * or not the account exists, a forged X-Forwarded-For changes nothing). No secret reaches any log.
 */
import t from 'tap'
import { type ProcessSystem, startProcesses } from '../helpers/processes.js'
import { SecretLedger } from '../helpers/secret-ledger.js'
import { HttpClient } from '../helpers/system.js'

const GRACE_MS = 1000
const MAX_FAILURES_PER_ACCOUNT = 5
const MAX_FAILURES_PER_ADDRESS = 30

let system: ProcessSystem
const ledger = new SecretLedger()

t.before(async () => {
  system = await startProcesses({
    env: {
      LOG_LEVEL: 'debug',
      REFRESH_REUSE_GRACE: `${GRACE_MS}ms`,
      // The guesses come from one address: the (account, address) limit is the one they meet.
      LOGIN_MAX_FAILURES_PER_ACCOUNT_AND_ADDRESS: String(MAX_FAILURES_PER_ACCOUNT),
      LOGIN_MAX_FAILURES_PER_ADDRESS: String(MAX_FAILURES_PER_ADDRESS),
      // The test client is on loopback: trusting it as a proxy would let it pick its own address.
      GATEWAY_TRUST_PROXY: '',
    },
  })
})
t.teardown(() => system?.stop())

/** A browser: a cookie jar on the gateway's origin, recording every secret it is handed. */
class Browser extends HttpClient {
  csrf = ''
  override async call(...args: Parameters<HttpClient['call']>) {
    const r = await super.call(...args)
    ledger.addFromAnswer({ json: r.json, headers: r.headers as Record<string, unknown> })
    if (typeof r.json.csrf_token === 'string') this.csrf = r.json.csrf_token
    return r
  }
  refresh(headers: Record<string, string> = { 'x-csrf-token': this.csrf }) {
    return this.call('POST', '/auth/refresh', { headers })
  }
  logout(headers: Record<string, string> = { 'x-csrf-token': this.csrf }) {
    return this.call('POST', '/auth/logout', { headers })
  }
}

let users = 0
async function newUser(): Promise<{ email: string; password: string; browser: Browser }> {
  const email = `user${++users}-${Date.now()}@example.com`
  const password = `correct horse battery ${users}`
  ledger.add('password', password)
  const browser = new Browser(system.urls.gateway)
  const r = await browser.call('POST', '/auth/register', { body: { email, password } })
  if (r.status !== 202) throw new Error(`register: ${r.status} ${r.text}`)
  const login = await browser.call('POST', '/auth/login', { body: { email, password } })
  if (login.status !== 200) throw new Error(`login: ${login.status} ${login.text}`)
  return { email, password, browser }
}

t.test('a rotated refresh token presented again revokes its whole session', async (t) => {
  const { browser } = await newUser()
  const first = browser.cookies.get('kg_refresh')!
  t.equal((await browser.refresh()).status, 200, 'refresh')
  const second = browser.cookies.get('kg_refresh')!
  t.not(second, first, 'the refresh token rotated')
  await new Promise((r) => setTimeout(r, GRACE_MS + 300))
  browser.cookies.set('kg_refresh', first)
  const answer = async () => {
    const r = await browser.refresh()
    return `${r.status} ${r.json.code}`
  }
  t.equal(await answer(), '401 KG_REFRESH_REUSED', 'the old token, after the grace window: reuse detected')
  browser.cookies.set('kg_refresh', second)
  t.equal(await answer(), '401 KG_REFRESH_INVALID', 'the newest token of the family is dead too')
})

t.test('two tabs refreshing the same token at once both succeed (the grace window)', async (t) => {
  const { browser } = await newUser()
  const tab = new Browser(system.urls.gateway)
  for (const [k, v] of browser.cookies) tab.cookies.set(k, v)
  tab.csrf = browser.csrf
  const [a, b] = await Promise.all([browser.refresh(), tab.refresh()])
  t.strictSame([a.status, b.status], [200, 200])
})

t.test('refresh tokens die with logout, logout-all and a password change', async (t) => {
  const one = await newUser()
  const gone = one.browser.cookies.get('kg_refresh')!
  t.equal((await one.browser.logout()).status, 204, 'logout')
  one.browser.cookies.set('kg_refresh', gone)
  let r = await one.browser.refresh()
  t.equal(`${r.status} ${r.json.code}`, '401 KG_REFRESH_INVALID', 'refresh after logout')

  const two = await newUser()
  const phone = new Browser(system.urls.gateway)
  const login = await phone.call('POST', '/auth/login', {
    body: { email: two.email, password: two.password },
  })
  const token = login.json.access_token as string
  t.equal(
    (await two.browser.call('POST', '/auth/logout-all', { token })).status,
    204,
    'logout-all from another device',
  )
  r = await phone.refresh()
  t.equal(r.status, 401, 'refresh of the device that called logout-all')
  r = await two.browser.refresh()
  t.equal(r.status, 401, 'refresh of the other session')

  const three = await newUser()
  const laptop = new Browser(system.urls.gateway)
  const access = (
    await laptop.call('POST', '/auth/login', { body: { email: three.email, password: three.password } })
  ).json.access_token as string
  const newPassword = 'a brand new passphrase'
  ledger.add('password', newPassword)
  r = await laptop.call('POST', '/auth/password', {
    token: access,
    body: { current_password: three.password, new_password: newPassword },
  })
  t.equal(r.status, 204, 'password changed')
  t.equal((await three.browser.refresh()).status, 401, 'refresh of another session after the password change')
  t.equal((await laptop.refresh()).status, 401, 'and of the session that changed it')
  const fresh = new Browser(system.urls.gateway)
  t.equal(
    (await fresh.call('POST', '/auth/login', { body: { email: three.email, password: three.password } }))
      .status,
    401,
    'the old password no longer logs in',
  )
  t.equal(
    (await fresh.call('POST', '/auth/login', { body: { email: three.email, password: newPassword } })).status,
    200,
    'the new one does',
  )
})

t.test('refresh and logout refuse requests without CSRF proof or from another site', async (t) => {
  const { browser } = await newUser()
  const other = await newUser()
  const gateway = system.urls.gateway
  const attempts: Array<[string, Record<string, string>, string]> = [
    ['no CSRF header', {}, 'KG_CSRF_FAILED'],
    ['an empty CSRF header', { 'x-csrf-token': '' }, 'KG_CSRF_FAILED'],
    ['a wrong CSRF header', { 'x-csrf-token': 'forged-csrf-token-value' }, 'KG_CSRF_FAILED'],
    ["another session's CSRF token", { 'x-csrf-token': other.browser.csrf }, 'KG_CSRF_FAILED'],
    ['a foreign Origin', { 'x-csrf-token': browser.csrf, origin: 'https://evil.example' }, 'KG_CROSS_SITE'],
    ['Origin null (sandboxed frame)', { 'x-csrf-token': browser.csrf, origin: 'null' }, 'KG_CROSS_SITE'],
    [
      'our host on another port',
      { 'x-csrf-token': browser.csrf, origin: 'http://127.0.0.1:1' },
      'KG_CROSS_SITE',
    ],
    [
      'Sec-Fetch-Site: cross-site',
      { 'x-csrf-token': browser.csrf, 'sec-fetch-site': 'cross-site' },
      'KG_CROSS_SITE',
    ],
  ]
  for (const route of ['refresh', 'logout'] as const) {
    for (const [what, headers, code] of attempts) {
      const r = await browser[route](headers)
      t.equal(`${r.status} ${r.json.code}`, `403 ${code}`, `${route} with ${what}`)
    }
  }
  let r = await browser.refresh({
    'x-csrf-token': browser.csrf,
    origin: gateway,
    'sec-fetch-site': 'same-origin',
  })
  t.equal(r.status, 200, 'the session survived every refused attempt and refreshes from its own origin')
  r = await browser.logout({ 'x-csrf-token': browser.csrf, origin: gateway })
  t.equal(r.status, 204, 'and logs out with proof')
})

t.test('password guessing is throttled per account and per address, telling nothing', async (t) => {
  const { email } = await newUser()
  const attacker = new Browser(system.urls.gateway)
  const guess = (account: string, password: string, headers: Record<string, string> = {}) =>
    attacker.call('POST', '/auth/login', { body: { email: account, password }, headers })

  const answers = async (account: string) => {
    const seen: string[] = []
    for (let i = 0; i < MAX_FAILURES_PER_ACCOUNT + 2; i++) {
      const r = await guess(account, `wrong guess ${i}`)
      seen.push(`${r.status} ${r.json.code}${r.headers['retry-after'] ? ' retry-after' : ''}`)
    }
    return seen
  }
  const known = await answers(email)
  t.strictSame(
    known,
    [
      ...Array(MAX_FAILURES_PER_ACCOUNT).fill('401 KG_INVALID_CREDENTIALS'),
      '429 KG_LOGIN_THROTTLED retry-after',
      '429 KG_LOGIN_THROTTLED retry-after',
    ],
    `${MAX_FAILURES_PER_ACCOUNT} failures, then throttled with Retry-After`,
  )
  const unknown = await answers(`nobody-${Date.now()}@example.com`)
  t.strictSame(unknown, known, 'an account that does not exist gets exactly the same answers')
  const r = await guess(email, 'correct horse battery 1')
  t.equal(r.status, 429, 'even the right password waits while the account is throttled')

  // Rotating X-Forwarded-For and the account does not escape the per-address limit.
  let throttledAt = 0
  for (let i = 1; i <= MAX_FAILURES_PER_ADDRESS + 1 && !throttledAt; i++) {
    const r = await guess(`spray-${i}-${Date.now()}@example.com`, 'Winter2026!', {
      'x-forwarded-for': `203.0.113.${i}`,
    })
    if (r.status === 429) throttledAt = i
    else t.equal(r.status, 401)
  }
  t.ok(
    throttledAt > 0,
    `the address was throttled after at most ${MAX_FAILURES_PER_ADDRESS} failures (at attempt ${throttledAt})`,
  )
})

t.test('no password, refresh token, access token or CSRF token in any log', async (t) => {
  const output = system.output()
  t.ok(ledger.size > 20, `${ledger.size} secrets handled`)
  t.strictSame(ledger.leaksIn('system', output), [], `none in ${output.split('\n').length} log lines`)
})
