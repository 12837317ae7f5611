/**
 * The whole system, as `npm start` runs it: every component its own process on free ports. A user walks
 * through the gateway from registration to logout-all; services are then called directly, past the gateway.
 */
import t from 'tap'
import { HttpClient, startSystem } from '../helpers/system.js'

const ADMIN = { email: 'admin@example.com', password: 'admin passphrase 1' }

t.test('a user walks the whole system through the gateway', async (t) => {
  const system = await startSystem({
    env: { KEYGATE_ADMIN_EMAIL: ADMIN.email, KEYGATE_ADMIN_PASSWORD: ADMIN.password },
  })
  let stopped = false
  t.teardown(() => (stopped ? undefined : system.stop()))
  const browser = new HttpClient(system.urls.gateway)
  const me = { email: 'ada@example.com', password: 'correct horse battery' }

  let r = await browser.call('POST', '/auth/register', { body: me })
  t.equal(r.status, 202, 'register')
  r = await browser.call('POST', '/auth/login', { body: me })
  t.equal(r.status, 200, 'login')
  let token = r.json.access_token as string
  const csrf = r.json.csrf_token as string
  t.ok(browser.cookies.has('kg_refresh'), 'the refresh token arrived as a cookie')

  r = await browser.call('PUT', '/api/profile/me', { token, body: { displayName: 'Ada Lovelace' } })
  t.equal(r.status, 200, 'profile updated')
  r = await browser.call('GET', '/api/profile/me', { token })
  t.equal(r.json.profile.displayName, 'Ada Lovelace')
  const sub = r.json.sub as string

  r = await browser.call('POST', '/api/orders', { token, body: { item: 'Analytical Engine', quantity: 1 } })
  t.equal(r.status, 201, 'order created')
  t.equal(
    r.json.customerName,
    'Ada Lovelace',
    'orders fetched the display name from profile on the user’s behalf',
  )
  t.equal(r.json.owner, sub)
  r = await browser.call('GET', '/api/orders', { token })
  t.equal(r.json.orders.length, 1)

  r = await browser.call('PUT', '/api/files/notes.txt', {
    token,
    raw: 'first notes',
    headers: { 'content-type': 'text/plain' },
  })
  t.equal(r.status, 201, 'file uploaded')
  r = await browser.call('POST', '/api/files/notes.txt/link', { token })
  t.equal(r.status, 200)
  const link = new URL(r.json.url as string)
  t.equal(link.origin, system.urls.gateway, 'the link points through the gateway')
  const anonymous = new HttpClient(system.urls.gateway)
  r = await anonymous.call('GET', link.pathname)
  t.equal(r.status, 200, 'downloaded once, without logging in')
  t.equal(r.text, 'first notes')
  r = await anonymous.call('GET', link.pathname)
  t.equal(r.status, 410, 'the second download is refused')

  r = await browser.call('POST', '/auth/refresh', { headers: { 'x-csrf-token': csrf } })
  t.equal(r.status, 200, 'refresh')
  token = r.json.access_token as string

  const admin = new HttpClient(system.urls.gateway)
  r = await admin.call('POST', '/auth/login', { body: ADMIN })
  const adminToken = r.json.access_token as string
  t.equal(
    (await browser.call('GET', '/api/admin/keys', { token })).status,
    403,
    'admin API needs the admin role',
  )
  r = await admin.call('GET', '/api/admin/keys', { token: adminToken })
  t.equal(r.status, 200)
  const before = r.json
  r = await admin.call('POST', '/api/admin/keys/rotate', { token: adminToken })
  t.equal(r.status, 200, `admin rotates the keys: ${r.text.slice(0, 200)}`)
  t.not(JSON.stringify(r.json), JSON.stringify(before))

  r = await browser.call('GET', '/api/orders', { token })
  t.equal(r.status, 200, 'the token signed before the rotation keeps working')
  r = await browser.call('POST', '/auth/refresh', { headers: { 'x-csrf-token': csrf } })
  token = r.json.access_token as string
  r = await browser.call('GET', '/api/profile/me', { token })
  t.equal(r.status, 200, 'a token signed by the new key works everywhere')
  r = await browser.call('POST', '/api/orders', { token, body: { item: 'Difference Engine', quantity: 2 } })
  t.equal(r.status, 201, 'and on the service-to-service hop')

  // A second session of the same user, e.g. another device.
  const phone = new HttpClient(system.urls.gateway)
  r = await phone.call('POST', '/auth/login', { body: me })
  const phoneCsrf = r.json.csrf_token as string

  r = await browser.call('POST', '/auth/logout', { headers: { 'x-csrf-token': csrf } })
  t.equal(r.status, 204, 'logout')
  r = await browser.call('POST', '/auth/refresh', { headers: { 'x-csrf-token': csrf } })
  t.equal(r.status, 401, 'refresh refused after logout')

  r = await phone.call('POST', '/auth/refresh', { headers: { 'x-csrf-token': phoneCsrf } })
  t.equal(r.status, 200, 'the other session still refreshes')
  r = await browser.call('POST', '/auth/login', { body: me })
  r = await browser.call('POST', '/auth/logout-all', { token: r.json.access_token as string })
  t.equal(r.status, 204, 'logout-all')
  r = await phone.call('POST', '/auth/refresh', { headers: { 'x-csrf-token': phoneCsrf } })
  t.equal(r.status, 401, 'logout-all invalidated the other session’s refresh token')

  stopped = true
  t.equal(await system.stop(), 0, 'SIGTERM (what Ctrl-C sends) stops every component cleanly')
})

t.test('services called directly, past the gateway', async (t) => {
  const system = await startSystem()
  t.teardown(() => system.stop())
  const client = new HttpClient(system.urls.gateway)
  const me = { email: 'direct@example.com', password: 'correct horse battery' }
  await client.call('POST', '/auth/register', { body: me })
  const token = (await client.call('POST', '/auth/login', { body: me })).json.access_token as string
  const forged = {
    'x-user-id': 'someone',
    'x-keygate-subject': 'someone',
    'x-keygate-roles': 'admin',
    'x-forwarded-user': 'someone',
  }
  const paths = { profile: '/me', orders: '/orders', files: '/files' } as const
  for (const [service, path] of Object.entries(paths)) {
    const direct = new HttpClient(system.urls[service as keyof typeof paths])
    let r = await direct.call('GET', path, { headers: forged })
    t.equal(r.status, 401, `${service} refuses forged identity headers`)
    t.match(r.headers['www-authenticate'], /^Bearer realm=/)
    r = await direct.call('GET', path, { headers: { ...forged, 'x-keygate-assertion': 'not.a.jws' } })
    t.equal(r.status, 401, `${service} refuses a forged assertion`)
    r = await direct.call('GET', path, { token })
    t.equal(r.status, 200, `${service} accepts a valid access token`)
  }

  // The same system: a third start would not fit the file's time on a loaded machine.
  t.test(
    '/readyz and /metrics only on the loopback ops listeners, never public nor through a prefix',
    async (t) => {
      for (const path of ['/readyz', '/metrics']) {
        for (const [name, url] of Object.entries(system.urls)) {
          const r = await new HttpClient(url).call('GET', path, { token })
          t.equal(r.status, 404, `${name} does not serve ${path} on its public port`)
          t.notMatch(r.text, /process_cpu|"checks"/)
          const ops = await new HttpClient(system.opsUrls[name as keyof typeof system.opsUrls]).call(
            'GET',
            path,
          )
          t.equal(ops.status, 200, `${name} serves ${path} on its ops listener`)
        }
        for (const prefix of ['/api/profile', '/api/orders', '/api/files']) {
          const r = await client.call('GET', `${prefix}${path}`, { token })
          // The prefix maps onto the service's own routes (`/api/orders/x` is `/orders/x`): refused or not
          // found, never the ops answer.
          t.ok(
            r.status >= 400 && r.status < 500,
            `a logged-in user does not reach ${prefix}${path} (${r.status})`,
          )
          t.notMatch(r.text, /process_cpu|"checks"/)
        }
      }
      const metrics = await new HttpClient(system.opsUrls.gateway).call('GET', '/metrics')
      t.match(metrics.text, /component="gateway"/)
      t.equal((await client.call('GET', '/healthz')).status, 200, '/healthz stays public')
    },
  )
})
