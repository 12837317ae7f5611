import { join } from 'node:path'
import t from 'tap'
import {
  assertionKeyFile,
  DEFAULT_BODY_LIMIT_BYTES,
  DEFAULT_STRIP_HEADERS,
  loadGatewayConfig,
} from '../../gateway/config.js'
import { commaList } from '../../lib/config.js'

t.test('defaults', async (t) => {
  const config = loadGatewayConfig({})
  t.equal(config.HOST, '127.0.0.1')
  t.equal(config.GATEWAY_PORT, 8080)
  t.equal(config.GATEWAY_BODY_LIMIT, DEFAULT_BODY_LIMIT_BYTES)
  t.equal(config.GATEWAY_UPSTREAM_TIMEOUT, 10_000, 'durations load as milliseconds')
  t.equal(config.GATEWAY_ASSERTION_TTL, 60_000)
  t.same(config.GATEWAY_RATE_LIMIT, { max: 600, windowMs: 60_000 })
  t.same(commaList(config.GATEWAY_STRIP_HEADERS), DEFAULT_STRIP_HEADERS)
  t.same(
    commaList(config.GATEWAY_TRUST_PROXY),
    [],
    'no forwarding header is believed by default, not even from a local client',
  )
  t.same(commaList(config.GATEWAY_CORS_ORIGINS), [], 'CORS is off unless origins are listed')
  t.equal(assertionKeyFile(config), join('keys', 'gateway-assertion-key.json'))
  t.equal(
    assertionKeyFile(loadGatewayConfig({ KEYS_DIR: '/srv/keys' })),
    '/srv/keys/gateway-assertion-key.json',
  )
  t.equal(assertionKeyFile(loadGatewayConfig({ GATEWAY_ASSERTION_KEY_FILE: '/k.json' })), '/k.json')
  t.equal(
    loadGatewayConfig({ API_AUDIENCE: 'shop' }).API_AUDIENCE,
    'shop',
    'the auth plugin’s settings are ours too',
  )
})

t.test('settings are parsed, and bad ones named', async (t) => {
  t.same(loadGatewayConfig({ GATEWAY_RATE_LIMIT: '50/10s' }).GATEWAY_RATE_LIMIT, {
    max: 50,
    windowMs: 10_000,
  })
  t.throws(() => loadGatewayConfig({ GATEWAY_RATE_LIMIT: 'lots' }), /GATEWAY_RATE_LIMIT/)
  t.throws(() => loadGatewayConfig({ GATEWAY_RATE_LIMIT: '0/1m' }), /GATEWAY_RATE_LIMIT/)
  t.throws(() => loadGatewayConfig({ GATEWAY_BODY_LIMIT: 'big' }), /GATEWAY_BODY_LIMIT/)
  t.same(
    commaList(
      loadGatewayConfig({ GATEWAY_TRUST_PROXY: '10.0.0.1, 172.16.0.0/12,fd00::/8' }).GATEWAY_TRUST_PROXY,
    ),
    ['10.0.0.1', '172.16.0.0/12', 'fd00::/8'],
  )
  for (const bad of ['10.0.0.300', '10.0.0.0/33', 'fd00::/129', 'gateway', '10.0.0.0/x'])
    t.throws(() => loadGatewayConfig({ GATEWAY_TRUST_PROXY: bad }), /GATEWAY_TRUST_PROXY/, bad)
  t.throws(() => loadGatewayConfig({ GATEWAY_UPSTREAM_TIMEOUT: 'soon' }), /GATEWAY_UPSTREAM_TIMEOUT/)
  t.same(commaList(' X-User-Id, ,x-other ', true), ['x-user-id', 'x-other'])
})

t.test('a bad rate limit or duration is explained by example, not by a pattern', async (t) => {
  t.throws(() => loadGatewayConfig({ GATEWAY_RATE_LIMIT: 'lots' }), {
    message: /GATEWAY_RATE_LIMIT must be a count and a duration like 600\/1m/,
  })
  t.throws(() => loadGatewayConfig({ GATEWAY_RATE_LIMIT: '0/1m' }), {
    message: /GATEWAY_RATE_LIMIT must allow at least 1 request per window/,
  })
  t.throws(() => loadGatewayConfig({ GATEWAY_UPSTREAM_TIMEOUT: 'soon' }), {
    message: /GATEWAY_UPSTREAM_TIMEOUT must be a duration like 250ms, 30s, 15m/,
  })
})
