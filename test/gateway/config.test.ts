import { join } from 'node:path'
import t from 'tap'
import {
  assertionKeyFile,
  commaList,
  DEFAULT_BODY_LIMIT_BYTES,
  DEFAULT_STRIP_HEADERS,
  defaultRateLimit,
  loadGatewayConfig,
} from '../../gateway/config.js'

t.test('defaults', async (t) => {
  const config = loadGatewayConfig({})
  t.equal(config.HOST, '127.0.0.1')
  t.equal(config.GATEWAY_PORT, 8080)
  t.equal(config.GATEWAY_BODY_LIMIT, DEFAULT_BODY_LIMIT_BYTES)
  t.equal(config.GATEWAY_UPSTREAM_TIMEOUT, '10s')
  t.same(defaultRateLimit(config), { max: 600, windowMs: 60_000 })
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
  t.same(defaultRateLimit(loadGatewayConfig({ GATEWAY_RATE_LIMIT: '50/10s' })), { max: 50, windowMs: 10_000 })
  t.throws(() => loadGatewayConfig({ GATEWAY_RATE_LIMIT: 'lots' }), /GATEWAY_RATE_LIMIT/)
  t.throws(() => defaultRateLimit(loadGatewayConfig({ GATEWAY_RATE_LIMIT: '0/1m' })), /GATEWAY_RATE_LIMIT/)
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
