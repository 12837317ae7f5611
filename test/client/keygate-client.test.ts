/**
 * The client's session logic in Node, against a fake gateway and fake tabs (test/client/fakes.ts): where the
 * tokens go, when it refreshes, what it does with refusals, and how tabs share one session.
 */
import t, { type Test } from 'tap'
import {
  DEFAULT_REFRESH_AHEAD_MS,
  KeygateClient,
  KeygateHttpError,
  KeygateLoggedOutError,
  REFRESH_RETRY_MS,
  type SessionEvent,
} from '../../client/index.js'
import { FAKE_EMAIL_CODE, FakeBrowser, FakeClock, FakeGateway, GATEWAY, settle } from './fakes.js'

const ADA = { email: 'ada@example.com', password: 'correct horse battery' }

function setUp(t: Test, options: { ttlS?: number; webLocks?: boolean; broadcastChannel?: boolean } = {}) {
  const clock = new FakeClock()
  const gateway = new FakeGateway(clock, options.ttlS ?? 60)
  const browser = new FakeBrowser(gateway, options)
  t.teardown(() => browser.close())
  return { clock, gateway, browser }
}

function record(client: KeygateClient): SessionEvent[] {
  const events: SessionEvent[] = []
  client.subscribe((e) => events.push(e))
  return events
}

const refreshRequests = (gateway: FakeGateway) => gateway.requests.filter((r) => r.path === '/auth/refresh')

t.test('login: the token is sent as a bearer and kept nowhere but in memory', async (t) => {
  const { gateway, browser } = setUp(t)
  const tab = browser.tab()
  const events = record(tab)
  t.equal(tab.status, 'unknown')
  await tab.login(ADA.email, ADA.password)
  t.equal(tab.status, 'logged-in')
  t.same(events, [{ type: 'login', fromOtherTab: false }])
  const login = gateway.requests.at(-1)!
  t.equal(login.credentials, 'include', 'the auth call lets the cookies through, cross-origin too')

  const response = await tab.fetch('/api/orders', { method: 'POST', body: '{"item":"x"}' })
  t.equal(response.status, 200)
  const call = gateway.requests.at(-1)!
  t.match(call.authorization, /^Bearer at-/)
  t.equal(call.credentials, undefined, 'API calls keep fetch’s default credentials')
  t.equal(JSON.stringify(Object.keys(tab)), '[]', 'no enumerable property holds anything')
  t.notMatch(JSON.stringify(tab), /at-/, 'the token does not serialise')
  t.notOk(browser.channels.posted.length === 0, 'the other tabs were told')
})

t.test('a failed login throws the gateway’s error and changes nothing', async (t) => {
  const { browser } = setUp(t)
  const tab = browser.tab()
  const error = await tab.login(ADA.email, 'wrong').catch((e: unknown) => e)
  t.ok(error instanceof KeygateHttpError)
  t.match(error, { status: 401, code: 'KG_INVALID_CREDENTIALS' })
  t.equal(tab.status, 'unknown')
  await t.rejects(tab.fetch('/api/orders'), KeygateLoggedOutError, 'no session, no call')
})

t.test('login methods, e-mail codes and external tokens', async (t) => {
  const { gateway, browser } = setUp(t)
  const tab = browser.tab()
  const other = browser.tab()
  t.same(await tab.loginMethods(), {
    methods: ['password', 'email-code', 'external'],
    registration: 'closed',
    externalIssuers: ['https://idp.test'],
  })
  t.equal(gateway.requests.at(-1)!.credentials, 'omit', 'no cookies needed to ask')
  gateway.methods = ['email-code', 'sms']
  t.same((await tab.loginMethods()).methods, ['email-code'], 'unknown methods are dropped')

  t.same(await tab.requestEmailCode(' Ada@Example.com'), { email: 'ada@example.com', expiresInMs: 600_000 })
  t.same(gateway.codesRequested, [' Ada@Example.com'])
  t.equal(tab.status, 'unknown', 'asking for a code logs nobody in')

  const wrong = await tab.loginWithEmailCode(ADA.email, '000000').catch((e: unknown) => e)
  t.match(wrong, { status: 401, code: 'KG_EMAIL_CODE_INVALID' })
  await tab.loginWithEmailCode(ADA.email, ` ${FAKE_EMAIL_CODE.slice(0, 3)} ${FAKE_EMAIL_CODE.slice(3)} `)
  t.equal(tab.status, 'logged-in', 'spaces in a typed code do not matter')
  await settle()
  t.equal(other.status, 'logged-in', 'the other tabs join')
  t.equal((await tab.fetch('/api/orders')).status, 200)
  await tab.logout()

  const expired = await tab.loginWithExternalToken('ext-token-old').catch((e: unknown) => e)
  t.match(expired, { status: 401, code: 'KG_TOKEN_EXPIRED' })
  await tab.loginWithExternalToken('ext-token-ada')
  t.equal(tab.status, 'logged-in')
  t.match(gateway.requests.at(-1), { path: '/auth/external', credentials: 'include' })
  t.equal((await tab.fetch('/api/orders')).status, 200)
})

t.test('restore on page load', async (t) => {
  t.test('resumes the session the cookie holds, with the CSRF token read from kg_csrf', async (t) => {
    const { gateway, browser } = setUp(t)
    await browser.tab().login(ADA.email, ADA.password)
    const reloaded = browser.tab()
    t.equal(await reloaded.restore(), true)
    t.equal(reloaded.status, 'logged-in')
    const refresh = refreshRequests(gateway).at(-1)!
    t.equal(refresh.csrf, browser.jar.csrf, 'the CSRF token came from the readable cookie')
    t.equal(refresh.credentials, 'include')
    t.equal((await reloaded.fetch('/api/profile/me')).status, 200)
  })

  t.test('without a CSRF cookie there is no session: no request is made', async (t) => {
    const { gateway, browser } = setUp(t)
    const tab = browser.tab()
    const events = record(tab)
    t.equal(await tab.restore(), false)
    t.same(events, [{ type: 'logout', reason: 'no-session', fromOtherTab: false }])
    t.equal(gateway.requests.length, 0)
  })

  t.test('a refused refresh means no session', async (t) => {
    const { gateway, browser } = setUp(t)
    await browser.tab().login(ADA.email, ADA.password)
    gateway.revokeAll()
    const tab = browser.tab()
    t.equal(await tab.restore(), false)
    t.equal(tab.status, 'logged-out')
  })

  t.test('an unreachable gateway is an error, not a logout', async (t) => {
    const { gateway, browser } = setUp(t)
    await browser.tab().login(ADA.email, ADA.password)
    gateway.failure = 'offline'
    const tab = browser.tab()
    await t.rejects(tab.restore(), TypeError)
    t.equal(tab.status, 'unknown', 'the app may try again')
    gateway.failure = null
    t.equal(await tab.restore(), true)
  })

  t.test('a call before restore waits for it', async (t) => {
    const { browser } = setUp(t)
    await browser.tab().login(ADA.email, ADA.password)
    const tab = browser.tab()
    t.equal((await tab.fetch('/api/orders')).status, 200)
    t.equal(tab.status, 'logged-in')
  })
})

t.test('silent refresh shortly before expiry', async (t) => {
  const { clock, gateway, browser } = setUp(t, { ttlS: 60 })
  const tab = browser.tab()
  const events = record(tab)
  await tab.login(ADA.email, ADA.password)
  const firstExpiry = tab.expiresAt!
  t.equal(firstExpiry, clock.now() + 59_000, 'counted from the request, less a second of rounding')
  // Lifetime 59 s → refresh a quarter (14.75 s) ahead, spread by up to a quarter of that (random 0.5 here):
  // due 46.09 s after login.
  await clock.advance(46_000)
  t.equal(refreshRequests(gateway).length, 0, 'not yet')
  await clock.advance(1_000)
  t.equal(refreshRequests(gateway).length, 1, 'refreshed before expiry')
  t.ok(tab.expiresAt! > firstExpiry)
  t.match(events.at(-1), { type: 'refresh', fromOtherTab: false })

  for (let i = 0; i < 5; i++) {
    await clock.advance(20_000)
    t.equal((await tab.fetch('/api/orders')).status, 200, `still working after ${(i + 3) * 20} s`)
  }
  t.notOk(
    gateway.requests.some((r) => r.path === '/api/orders' && r.authorization === null),
    'every call carried a token',
  )
  t.equal(gateway.refreshes.rotated, refreshRequests(gateway).length)
})

t.test('refresh ahead is capped at DEFAULT_REFRESH_AHEAD_MS for long-lived tokens', async (t) => {
  const { clock, gateway, browser } = setUp(t, { ttlS: 900 })
  const tab = browser.tab()
  await tab.login(ADA.email, ADA.password)
  await clock.advance(899_000 - DEFAULT_REFRESH_AHEAD_MS - 1)
  t.equal(refreshRequests(gateway).length, 0)
  await clock.advance(DEFAULT_REFRESH_AHEAD_MS / 4)
  t.equal(refreshRequests(gateway).length, 1)
})

t.test('a token found expiring at call time is refreshed first (a throttled timer)', async (t) => {
  const { clock, gateway, browser } = setUp(t, { ttlS: 60 })
  // A hidden tab's timers may not fire for a minute: here they never do.
  const tab = tabWithoutTimers(t, browser)
  await tab.login(ADA.email, ADA.password)
  await clock.advance(50_000)
  t.equal(refreshRequests(gateway).length, 0, 'the timer did not fire')
  const calls = await Promise.all([tab.fetch('/api/a'), tab.fetch('/api/b')])
  t.same(
    calls.map((r) => r.status),
    [200, 200],
  )
  t.equal(refreshRequests(gateway).length, 1, 'one refresh, before the calls, served both')
  t.ok(
    gateway.requests.findIndex((r) => r.path === '/auth/refresh') <
      gateway.requests.findIndex((r) => r.path === '/api/a'),
  )
})

t.test('a 401 invalid_token: one refresh, one retry', async (t) => {
  const { gateway, browser } = setUp(t)
  const tab = browser.tab()
  await tab.login(ADA.email, ADA.password)
  gateway.accessTokens.clear() // every token the gateway knew is now refused

  const response = await tab.fetch('/api/orders', { method: 'PUT', body: 'payload' })
  t.equal(response.status, 200, 'the retry went through')
  t.match(await response.json(), { body: 'payload' }, 'with the same body')
  t.same(
    gateway.requests.map((r) => `${r.method} ${r.path}`),
    ['POST /auth/login', 'PUT /api/orders', 'POST /auth/refresh', 'PUT /api/orders'],
  )

  gateway.accessTokens.clear()
  const original = gateway.fetchFor.bind(gateway)
  let refused = 0
  const countingTab = new KeygateClient({
    gatewayUrl: GATEWAY,
    runtime: {
      ...runtimeOf(browser),
      fetch: async (input, init) => {
        const answer = await original(browser.jar)(input, init)
        if (new URL(input).pathname === '/api/orders') {
          refused++
          return new Response('{}', {
            status: 401,
            headers: { 'www-authenticate': 'Bearer realm="keygate", error="invalid_token"' },
          })
        }
        return answer
      },
    },
  })
  t.teardown(() => countingTab.close())
  const refusedTwice = await countingTab.fetch('/api/orders')
  t.equal(refusedTwice.status, 401, 'a second refusal is returned as it is')
  t.equal(refused, 2, 'no loop: one retry only')
})

t.test('a 401 that is not invalid_token, and a stream body, are returned without a retry', async (t) => {
  const { gateway, browser } = setUp(t)
  const tab = browser.tab()
  await tab.login(ADA.email, ADA.password)
  gateway.accessTokens.clear()
  const stream = new ReadableStream({
    start(controller) {
      controller.enqueue(new TextEncoder().encode('once'))
      controller.close()
    },
  })
  const response = await tab.fetch('/api/files/x', {
    method: 'PUT',
    body: stream,
    duplex: 'half',
  } as RequestInit)
  t.equal(response.status, 401, 'a stream cannot be sent twice')
  t.equal(refreshRequests(gateway).length, 0)
})

t.test('the session ends when the issuer refuses a refresh', async (t) => {
  const { clock, gateway, browser } = setUp(t, { ttlS: 60 })
  const tab = browser.tab()
  const events = record(tab)
  await tab.login(ADA.email, ADA.password)
  gateway.revokeAll()
  await clock.advance(50_000)
  t.equal(tab.status, 'logged-out')
  t.same(events.at(-1), { type: 'logout', reason: 'session-ended', fromOtherTab: false })
  await t.rejects(tab.fetch('/api/orders'), KeygateLoggedOutError)
  await t.rejects(tab.refresh(), KeygateLoggedOutError)
  t.equal(clock.pendingTimers, 0, 'no timer left behind')
})

t.test('a passing failure keeps the session and tries again', async (t) => {
  const { clock, gateway, browser } = setUp(t, { ttlS: 60 })
  const tab = browser.tab()
  const events = record(tab)
  await tab.login(ADA.email, ADA.password)
  gateway.failure = 503
  await clock.advance(47_000)
  const tries = refreshRequests(gateway).length
  t.ok(tries >= 1, 'it tried')
  t.equal(tab.status, 'logged-in', 'a 503 is not a logout')
  t.equal((await tab.fetch('/api/orders')).status, 503, 'calls go on with the token while it is valid')
  gateway.failure = null
  await clock.advance(REFRESH_RETRY_MS)
  t.ok(refreshRequests(gateway).length > tries, 'and tried again')
  t.equal(tab.status, 'logged-in')
  t.match(events.at(-1), { type: 'refresh' })
  t.equal((await tab.fetch('/api/orders')).status, 200)
})

t.test('a call on an expired token, the gateway down: the refresh error is thrown', async (t) => {
  const { clock, gateway, browser } = setUp(t, { ttlS: 60 })
  const tab = tabWithoutTimers(t, browser)
  await tab.login(ADA.email, ADA.password)
  gateway.failure = 'offline'
  await clock.advance(61_000)
  await t.rejects(tab.fetch('/api/orders'), TypeError)
  t.equal(tab.status, 'logged-in', 'offline is not logged out')
})

t.test('tabs', async (t) => {
  t.test('timers of two tabs fire together: one refresh serves both', async (t) => {
    const { clock, gateway, browser } = setUp(t, { ttlS: 60 })
    const one = browser.tab()
    const two = browser.tab()
    const twoEvents = record(two)
    await one.login(ADA.email, ADA.password)
    await settle()
    t.equal(two.status, 'logged-in', 'the other tab joined the new session')
    t.same(twoEvents, [{ type: 'login', fromOtherTab: true }])
    t.equal(one.expiresAt, two.expiresAt)

    for (let round = 1; round <= 4; round++) {
      await clock.advance(47_000)
      t.equal(refreshRequests(gateway).length, round, `round ${round}: one refresh`)
      t.equal(one.expiresAt, two.expiresAt, 'both hold the fresh token')
    }
    t.equal(gateway.maxRefreshesInFlight, 1)
    t.same(gateway.refreshes, { rotated: 4, grace: 0, reused: 0, refused: 0 })
    t.ok(twoEvents.some((e) => e.type === 'refresh' && e.fromOtherTab))
    for (const tab of [one, two]) t.equal((await tab.fetch('/api/orders')).status, 200)
  })

  t.test('forced refreshes in two tabs at once take turns (Web Locks)', async (t) => {
    const { gateway, browser } = setUp(t)
    const tabs = [browser.tab(), browser.tab(), browser.tab()]
    await tabs[0]!.login(ADA.email, ADA.password)
    await settle()
    await Promise.all([...tabs, ...tabs].map((tab) => tab.refresh()))
    t.equal(gateway.maxRefreshesInFlight, 1, 'never two refreshes at once')
    t.same(gateway.refreshes, { rotated: 6, grace: 0, reused: 0, refused: 0 })
    for (const tab of tabs) t.equal(tab.status, 'logged-in')
    t.equal(browser.locks.maxHeld, 1)
  })

  t.test('without Web Locks tabs may race; the issuer’s grace window keeps them logged in', async (t) => {
    const { gateway, browser } = setUp(t, { webLocks: false })
    gateway.graceMs = 10_000
    const [one, two] = [browser.tab(), browser.tab()]
    t.equal(one.crossTabLocking, false)
    await one.login(ADA.email, ADA.password)
    await settle()
    await Promise.all([one.refresh(), two.refresh()])
    t.equal(gateway.maxRefreshesInFlight, 2, 'the race happened')
    t.equal(gateway.refreshes.reused, 0)
    t.equal(gateway.refreshes.grace, 1)
    for (const tab of [one, two]) t.equal(tab.status, 'logged-in')
  })

  t.test('without Web Locks one tab still never races itself', async (t) => {
    const { gateway, browser } = setUp(t, { webLocks: false })
    const tab = browser.tab()
    await tab.login(ADA.email, ADA.password)
    await Promise.all([tab.refresh(), tab.refresh(), tab.refresh()])
    t.equal(gateway.maxRefreshesInFlight, 1)
    t.equal(gateway.refreshes.rotated, 3)
  })

  t.test('logout in one tab logs out every tab at once', async (t) => {
    const { gateway, browser } = setUp(t)
    const [one, two] = [browser.tab(), browser.tab()]
    const twoEvents = record(two)
    await one.login(ADA.email, ADA.password)
    await settle()
    const csrf = browser.jar.csrf
    await one.logout()
    const logout = gateway.requests.at(-1)!
    t.match(logout, { path: '/auth/logout', csrf, credentials: 'include' }, 'with the CSRF token and cookies')
    t.equal(one.status, 'logged-out')
    await settle()
    t.equal(two.status, 'logged-out')
    t.same(twoEvents.at(-1), { type: 'logout', reason: 'logout', fromOtherTab: true })
    await t.rejects(two.fetch('/api/orders'), KeygateLoggedOutError)
    t.equal(browser.jar.refresh, null, 'the issuer cleared the cookies')
  })

  t.test('logout with the gateway unreachable: logged out here, and the error says so', async (t) => {
    const { gateway, browser } = setUp(t)
    const [one, two] = [browser.tab(), browser.tab()]
    await one.login(ADA.email, ADA.password)
    await settle()
    gateway.failure = 'offline'
    await t.rejects(one.logout(), TypeError)
    await settle()
    t.equal(one.status, 'logged-out')
    t.equal(two.status, 'logged-out')
  })

  t.test('logout-all sends the bearer token and logs out every tab', async (t) => {
    const { gateway, browser } = setUp(t)
    const [one, two] = [browser.tab(), browser.tab()]
    await one.login(ADA.email, ADA.password)
    await settle()
    const elsewhere = new FakeBrowser(gateway)
    t.teardown(() => elsewhere.close())
    const phone = elsewhere.tab()
    const phoneEvents = record(phone)
    await phone.login(ADA.email, ADA.password)

    await two.logoutAll()
    t.match(gateway.requests.at(-1), { path: '/auth/logout-all', authorization: /^Bearer at-/ })
    await settle()
    t.equal(one.status, 'logged-out')
    t.equal(two.status, 'logged-out')
    t.equal(phone.status, 'logged-in', 'another browser learns on its next call')
    await t.rejects(phone.fetch('/api/orders'), KeygateLoggedOutError)
    t.same(phoneEvents.at(-1), { type: 'logout', reason: 'session-ended', fromOtherTab: false })
  })

  t.test('a refresh result that arrives after a logout does not bring the session back', async (t) => {
    const { clock, browser } = setUp(t)
    const [one, two] = [browser.tab(), browser.tab()]
    await one.login(ADA.email, ADA.password)
    await settle()
    const port = browser.channels.open(`keygate:${GATEWAY}/`)
    const before = clock.now()
    await clock.advance(1000)
    await one.logout()
    port.postMessage({
      type: 'tokens',
      accessToken: 'at-stale',
      expiresAt: before + 60_000,
      lifetimeMs: 60_000,
      csrfToken: 'x',
      issuedAt: before,
      login: false,
    })
    await settle()
    t.equal(two.status, 'logged-out')
    port.close()
  })

  t.test('a logout older than the tab’s session does not end it', async (t) => {
    const { clock, browser } = setUp(t)
    const tab = browser.tab()
    const port = browser.channels.open(`keygate:${GATEWAY}/`)
    const before = clock.now()
    await clock.advance(1000)
    await tab.login(ADA.email, ADA.password)
    port.postMessage({ type: 'logout', reason: 'logout', at: before })
    await settle()
    t.equal(tab.status, 'logged-in')
    port.close()
  })

  t.test('malformed channel messages are ignored', async (t) => {
    const { browser } = setUp(t)
    const tab = browser.tab()
    await tab.login(ADA.email, ADA.password)
    const port = browser.channels.open(`keygate:${GATEWAY}/`)
    for (const junk of [
      null,
      'logout',
      { type: 'logout' },
      { type: 'logout', reason: 'bye', at: 1 },
      { type: 'tokens' },
    ]) {
      port.postMessage(junk)
    }
    await settle()
    t.equal(tab.status, 'logged-in')
    port.close()
  })

  t.test('without BroadcastChannel each tab is on its own, and still works', async (t) => {
    const { gateway, browser } = setUp(t, { broadcastChannel: false })
    const [one, two] = [browser.tab(), browser.tab()]
    await one.login(ADA.email, ADA.password)
    t.equal(await two.restore(), true, 'the shared cookie restores the other tab')
    t.equal(gateway.refreshes.reused, 0)
  })
})

t.test('the token goes to the gateway only', async (t) => {
  const { gateway, browser } = setUp(t)
  const tab = browser.tab()
  await tab.login(ADA.email, ADA.password)
  await t.rejects(
    tab.fetch('https://evil.test/api/x'),
    /refusing to send the access token to https:\/\/evil\.test/,
  )
  await t.rejects(tab.fetch('//evil.test/api/x'), /refusing/)
  t.equal((await tab.fetch(`${GATEWAY}/api/x`)).status, 200, 'an absolute gateway URL is fine')
  t.equal(gateway.requests.filter((r) => r.path === '/api/x').length, 1)
})

t.test('a gateway URL with a path prefixes every call', async (t) => {
  const seen: string[] = []
  const client = new KeygateClient({
    gatewayUrl: 'https://api.example.com/gw',
    runtime: {
      fetch: async (input) => {
        seen.push(input)
        return new Response(null, { status: 401 })
      },
      openChannel: undefined,
      locks: undefined,
      cookies: () => 'kg_csrf=abc',
    },
  })
  t.teardown(() => client.close())
  t.equal(await client.restore(), false)
  t.same(seen, ['https://api.example.com/gw/auth/refresh'])
})

t.test('options are checked', async (t) => {
  t.throws(
    () => new KeygateClient({ gatewayUrl: GATEWAY, refreshAheadMs: -1 }),
    /refreshAheadMs must be a number of milliseconds/,
  )
  t.throws(() => new KeygateClient({ runtime: { pageUrl: () => undefined } }), /gatewayUrl is required/)
})

t.test('a listener that throws does not stop the others', async (t) => {
  const { browser } = setUp(t)
  const tab = browser.tab()
  const seen: string[] = []
  const original = console.error
  const logged: unknown[] = []
  console.error = (e: unknown) => logged.push(e)
  t.teardown(() => (console.error = original))
  tab.subscribe(() => {
    throw new Error('broken listener')
  })
  const unsubscribe = tab.subscribe((e) => seen.push(e.type))
  await tab.login(ADA.email, ADA.password)
  t.same(seen, ['login'])
  t.match(logged, [/broken listener/])
  unsubscribe()
  await tab.logout()
  t.same(seen, ['login'], 'unsubscribed')
})

/** A tab of `browser` whose timers never fire (a hidden tab, throttled), closed at `t`'s end. */
function tabWithoutTimers(t: Test, browser: FakeBrowser): KeygateClient {
  const tab = new KeygateClient({
    gatewayUrl: GATEWAY,
    runtime: { ...runtimeOf(browser), setTimeout: () => 0 },
  })
  t.teardown(() => tab.close())
  return tab
}

/** The runtime a fake browser gives its tabs. */
function runtimeOf(browser: FakeBrowser) {
  const clock = browser.gateway.clock
  return {
    fetch: browser.gateway.fetchFor(browser.jar),
    now: clock.now,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    random: () => 0.5,
    locks: browser.locks,
    openChannel: browser.channels.open,
    cookies: () => browser.jar.readable(),
    pageUrl: () => `${GATEWAY}/`,
    onVisible: () => () => undefined,
  }
}
