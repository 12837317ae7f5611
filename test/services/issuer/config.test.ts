import t from 'tap'
import { issuerSettings, loadIssuerConfig } from '../../../services/issuer/config.js'

t.test('defaults', async (t) => {
  const config = loadIssuerConfig({})
  t.equal(config.ISSUER_URL, 'http://127.0.0.1:4000')
  const s = issuerSettings(config)
  t.match(s, {
    issuer: 'http://127.0.0.1:4000',
    audience: 'keygate-api',
    clientId: 'keygate-web',
    accessTokenTtlMs: 15 * 60_000,
    jwksMaxAgeMs: 5 * 60_000,
    keyPublishLeadMs: 3_600_000,
    keyRotationIntervalMs: 3 * 86_400_000,
    retiredKeyKeepMs: 15 * 60_000 + 5 * 60_000 + 60_000,
    revokedKeyKeepMs: 15 * 60_000 + 60_000,
    rsaBits: 2048,
    keysDir: 'keys',
    databaseUrl: 'data/issuer.db',
    sessionIdleTtlMs: 7 * 86_400_000,
    sessionAbsoluteTtlMs: 30 * 86_400_000,
    refreshReuseGraceMs: 10_000,
    registrationOpen: true,
    loginMaxFailuresPerAccount: 10,
    loginMaxFailuresPerAddress: 50,
    loginThrottleWindowMs: 15 * 60_000,
  })
  t.same([...s.allowedOrigins], ['http://127.0.0.1:8080'], "the gateway's origin by default")
})

t.test('settings from the environment', async (t) => {
  const s = issuerSettings(
    loadIssuerConfig({
      KEY_RSA_BITS: '3072',
      DATA_DIR: '/var/lib/keygate',
      REGISTRATION: 'closed',
      ALLOWED_ORIGINS: 'https://a.example, https://b.example:8443/',
    }),
  )
  t.equal(s.rsaBits, 3072)
  t.equal(s.databaseUrl, '/var/lib/keygate/issuer.db')
  t.notOk(s.registrationOpen)
  t.same([...s.allowedOrigins], ['https://a.example', 'https://b.example:8443'])
  t.equal(
    issuerSettings(loadIssuerConfig({ DATABASE_URL: 'postgres://db/issuer' })).databaseUrl,
    'postgres://db/issuer',
  )
})

t.test('bad settings fail at start, naming the setting', async (t) => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ KEY_RSA_BITS: '1024' }, /KEY_RSA_BITS/],
    [{ ACCESS_TOKEN_TTL: 'soon' }, /ACCESS_TOKEN_TTL/],
    [{ KEY_PUBLISH_LEAD: '1m', JWKS_MAX_AGE: '5m' }, /KEY_PUBLISH_LEAD must be at least JWKS_MAX_AGE/],
    [{ KEY_ROTATION_INTERVAL: '30m' }, /KEY_ROTATION_INTERVAL must be at least KEY_PUBLISH_LEAD/],
    [{ SESSION_IDLE_TTL: '40d' }, /SESSION_IDLE_TTL must not exceed SESSION_ABSOLUTE_TTL/],
    [{ ACCESS_TOKEN_TTL: '0s' }, /ACCESS_TOKEN_TTL must be at least 1s/],
    [{ REGISTRATION: 'maybe' }, /REGISTRATION/],
    [{ LOGIN_MAX_FAILURES_PER_ACCOUNT: '0' }, /LOGIN_MAX_FAILURES_PER_ACCOUNT/],
    [{ ALLOWED_ORIGINS: 'app.example' }, /ALLOWED_ORIGINS/],
    [{ KEYGATE_ADMIN_PASSWORD: 'x' }, /KEYGATE_ADMIN_EMAIL and KEYGATE_ADMIN_PASSWORD/],
  ]
  for (const [env, message] of cases) t.throws(() => loadIssuerConfig(env), { message }, JSON.stringify(env))
})
