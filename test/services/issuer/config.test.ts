import { randomBytes } from 'node:crypto'
import t from 'tap'
import { issuerSettings, loadIssuerConfig } from '../../../services/issuer/config.js'

const KEK = randomBytes(32)

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
    trustProxy: [],
    loginThrottle: {
      maxFailuresPerAccountAndAddress: 5,
      maxFailuresPerAddress: 50,
      maxFailuresPerAccount: 10,
      backoffMs: 60_000,
      windowMs: 15 * 60_000,
      slowdownMaxMs: 5000,
    },
    registrationLimit: { max: 20, windowMs: 60_000 },
    feedSecrets: undefined,
    feedHeartbeatMs: 5000,
    feedPollIntervalMs: 1000,
    feedMaxStreams: 1000,
    keyStorage: 'file',
    keyEncryptionKey: undefined,
  })
  t.same([...s.allowedOrigins], ['http://127.0.0.1:8080'], "the gateway's origin by default")
  t.same(s.trustProxy, [], 'no forwarding header is believed by default')
})

t.test('trusted proxies and throttle settings', async (t) => {
  const s = issuerSettings(
    loadIssuerConfig({
      ISSUER_TRUST_PROXY: '172.30.0.10, 10.0.0.0/8 ,fd00::/8,loopback',
      LOGIN_BACKOFF: '30s',
      LOGIN_SLOWDOWN_MAX: '0',
      REGISTRATION_RATE_LIMIT: '5/1h',
    }),
  )
  t.same(s.trustProxy, ['172.30.0.10', '10.0.0.0/8', 'fd00::/8', 'loopback'])
  t.match(s.loginThrottle, { backoffMs: 30_000, slowdownMaxMs: 0 })
  t.same(s.registrationLimit, { max: 5, windowMs: 3_600_000 })
})

t.test('exchanged tokens never outlive ACCESS_TOKEN_TTL, whatever TOKEN_EXCHANGE_TTL says', async (t) => {
  t.equal(issuerSettings(loadIssuerConfig({})).tokenExchangeTtlMs, 300_000, 'the default, 5m')
  t.equal(issuerSettings(loadIssuerConfig({ ACCESS_TOKEN_TTL: '5s' })).tokenExchangeTtlMs, 5_000)
  t.equal(
    issuerSettings(loadIssuerConfig({ ACCESS_TOKEN_TTL: '2m', TOKEN_EXCHANGE_TTL: '1h' })).tokenExchangeTtlMs,
    120_000,
  )
  t.equal(issuerSettings(loadIssuerConfig({ TOKEN_EXCHANGE_TTL: '30s' })).tokenExchangeTtlMs, 30_000)
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
  const pg = issuerSettings(
    loadIssuerConfig({ DATABASE_URL: 'postgres://db/issuer', KEY_ENCRYPTION_KEY: KEK.toString('base64') }),
  )
  t.equal(pg.databaseUrl, 'postgres://db/issuer')
  t.equal(pg.keyStorage, 'database', 'instances on PostgreSQL share the key set there')
  t.same(pg.keyEncryptionKey, KEK)
  for (const spelling of [KEK.toString('base64url'), KEK.toString('hex')]) {
    t.same(issuerSettings(loadIssuerConfig({ KEY_ENCRYPTION_KEY: spelling })).keyEncryptionKey, KEK, spelling)
  }
  const feed = issuerSettings(
    loadIssuerConfig({
      REVOCATION_FEED_SECRET: 'new-feed-secret-0123, old-feed-secret-4567',
      FEED_HEARTBEAT: '2s',
      FEED_POLL_INTERVAL: '250ms',
      FEED_MAX_STREAMS: '10',
    }),
  )
  t.same(feed.feedSecrets, ['new-feed-secret-0123', 'old-feed-secret-4567'], 'a list while rotating')
  t.match(feed, { feedHeartbeatMs: 2000, feedPollIntervalMs: 250, feedMaxStreams: 10 })
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
    [{ LOGIN_MAX_FAILURES_PER_ACCOUNT_AND_ADDRESS: '0' }, /LOGIN_MAX_FAILURES_PER_ACCOUNT_AND_ADDRESS/],
    [{ LOGIN_BACKOFF: '20m' }, /LOGIN_BACKOFF must not exceed LOGIN_THROTTLE_WINDOW/],
    [{ LOGIN_BACKOFF: '0s' }, /LOGIN_BACKOFF must be at least 1s/],
    [{ ISSUER_TRUST_PROXY: 'gateway' }, /ISSUER_TRUST_PROXY must be a comma-separated list/],
    [{ ISSUER_TRUST_PROXY: '10.0.0.0/40' }, /ISSUER_TRUST_PROXY/],
    [{ REGISTRATION_RATE_LIMIT: 'many' }, /REGISTRATION_RATE_LIMIT/],
    [{ REGISTRATION_RATE_LIMIT: '0/1m' }, /REGISTRATION_RATE_LIMIT must allow at least 1/],
    [{ ALLOWED_ORIGINS: 'app.example' }, /ALLOWED_ORIGINS/],
    [{ KEYGATE_ADMIN_PASSWORD: 'x' }, /KEYGATE_ADMIN_EMAIL and KEYGATE_ADMIN_PASSWORD/],
    [
      { DATABASE_URL: 'postgres://db/issuer' },
      /KEY_ENCRYPTION_KEY is required when DATABASE_URL is PostgreSQL/,
    ],
    [{ KEY_ENCRYPTION_KEY: 'too-short-to-be-a-key' }, /KEY_ENCRYPTION_KEY must be 32 random bytes/],
    [{ KEY_ENCRYPTION_KEY: randomBytes(16).toString('hex') }, /KEY_ENCRYPTION_KEY must be 32 random bytes/],
    [{ REVOCATION_FEED_SECRET: 'short' }, /REVOCATION_FEED_SECRET/],
    [
      { REVOCATION_FEED_SECRET: 'a-long-enough-secret,short' },
      /REVOCATION_FEED_SECRET must be a comma-separated/,
    ],
    [{ FEED_HEARTBEAT: '20s' }, /FEED_HEARTBEAT must be at least 100ms and under 15s/],
    [{ FEED_HEARTBEAT: '10ms' }, /FEED_HEARTBEAT/],
    [{ FEED_POLL_INTERVAL: '0s' }, /FEED_POLL_INTERVAL must be at least 100ms/],
    [{ FEED_MAX_STREAMS: '0' }, /FEED_MAX_STREAMS/],
  ]
  for (const [env, message] of cases) t.throws(() => loadIssuerConfig(env), { message }, JSON.stringify(env))
  try {
    loadIssuerConfig({ KEY_ENCRYPTION_KEY: 'not-a-key-but-a-secret-value' })
  } catch (err) {
    t.notMatch((err as Error).message, /not-a-key-but-a-secret-value/, 'the message never quotes the key')
  }
})
