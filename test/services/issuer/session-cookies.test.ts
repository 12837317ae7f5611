import t from 'tap'
import { issuerFixture, login, refreshRequest, register } from './fixtures.js'

t.test('refresh and logout need CSRF proof and a same-site request', async (t) => {
  const { app } = await issuerFixture(t, {
    env: { ALLOWED_ORIGINS: 'https://app.example, http://localhost:5173' },
  })
  await register(app, 'csrf@example.com')
  const s = await login(app, 'csrf@example.com')

  for (const url of ['/auth/refresh', '/auth/logout']) {
    const send = (headers: Record<string, string>) =>
      app.inject({ method: 'POST', url, headers, cookies: { kg_refresh: s.refreshToken } })
    const cases: Array<[Record<string, string>, number, string, string]> = [
      [{}, 403, 'KG_CSRF_FAILED', 'no CSRF header'],
      [{ 'x-csrf-token': 'forged' }, 403, 'KG_CSRF_FAILED', 'wrong CSRF header'],
      [{ 'x-csrf-token': s.csrfToken.slice(1) }, 403, 'KG_CSRF_FAILED', 'truncated CSRF header'],
      [
        { 'x-csrf-token': s.csrfToken, origin: 'https://evil.example' },
        403,
        'KG_CROSS_SITE',
        'foreign Origin',
      ],
      [{ 'x-csrf-token': s.csrfToken, origin: 'null' }, 403, 'KG_CROSS_SITE', 'opaque Origin'],
      [
        { 'x-csrf-token': s.csrfToken, 'sec-fetch-site': 'cross-site' },
        403,
        'KG_CROSS_SITE',
        'Sec-Fetch-Site',
      ],
    ]
    for (const [headers, status, code, why] of cases) {
      const res = await send(headers)
      t.equal(res.statusCode, status, `${url}: ${why}`)
      t.equal(res.json().code, code, `${url}: ${why}`)
    }
  }

  const sameOrigin = await refreshRequest(app, s.refreshToken, s.csrfToken, {
    origin: 'http://localhost:80',
    host: 'localhost:80',
    'sec-fetch-site': 'same-origin',
  })
  t.equal(sameOrigin.statusCode, 200, "the request's own origin is allowed")
  const next = sameOrigin.cookies.find((c) => c.name === 'kg_refresh')!.value
  const allowed = await refreshRequest(app, next, s.csrfToken, { origin: 'https://app.example' })
  t.equal(allowed.statusCode, 200, 'an ALLOWED_ORIGINS origin is allowed')
})

t.test('the own origin honours X-Forwarded-* only from a trusted proxy', async (t) => {
  // Trusted proxies are configured (ISSUER_TRUST_PROXY); none is believed by default (see below).
  const { app } = await issuerFixture(t, { env: { ISSUER_TRUST_PROXY: '127.0.0.1' } })
  await register(app, 'proxy@example.com')
  const s = await login(app, 'proxy@example.com')
  const forwarded = {
    origin: 'https://id.example',
    'x-forwarded-proto': 'https',
    'x-forwarded-host': 'id.example',
  }
  const untrusted = await app.inject({
    method: 'POST',
    url: '/auth/refresh',
    remoteAddress: '203.0.113.9',
    headers: { ...forwarded, 'x-csrf-token': s.csrfToken },
    cookies: { kg_refresh: s.refreshToken },
  })
  t.equal(untrusted.statusCode, 403, 'a client cannot claim an origin through forwarded headers')
  t.equal(untrusted.json().code, 'KG_CROSS_SITE')
  const trusted = await app.inject({
    method: 'POST',
    url: '/auth/refresh',
    remoteAddress: '127.0.0.1',
    headers: { ...forwarded, 'x-csrf-token': s.csrfToken },
    cookies: { kg_refresh: s.refreshToken },
  })
  t.equal(trusted.statusCode, 200, 'a loopback proxy (the gateway) is believed')
})

t.test('by default no proxy is believed, not even on loopback', async (t) => {
  const { app } = await issuerFixture(t)
  await register(app, 'local@example.com')
  const s = await login(app, 'local@example.com')
  const res = await app.inject({
    method: 'POST',
    url: '/auth/refresh',
    remoteAddress: '127.0.0.1',
    headers: {
      origin: 'https://id.example',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'id.example',
      'x-csrf-token': s.csrfToken,
    },
    cookies: { kg_refresh: s.refreshToken },
  })
  t.equal(res.statusCode, 403)
  t.equal(res.json().code, 'KG_CROSS_SITE')
})

t.test('by default the gateway origin is allowed', async (t) => {
  const { app } = await issuerFixture(t, { env: { GATEWAY_URL: 'https://gw.example:8443' } })
  await register(app, 'gw@example.com')
  const s = await login(app, 'gw@example.com')
  const res = await refreshRequest(app, s.refreshToken, s.csrfToken, { origin: 'https://gw.example:8443' })
  t.equal(res.statusCode, 200)
})

t.test('a bad ALLOWED_ORIGINS entry fails at start', async (t) => {
  await t.rejects(
    issuerFixture(t, { env: { ALLOWED_ORIGINS: 'https://ok.example,https://bad.example/path' } }),
    {
      message: /ALLOWED_ORIGINS/,
    },
  )
})
