/**
 * The issuer behind a real gateway, both listening on loopback, clients connecting from other loopback
 * addresses (127.0.0.2, 127.0.0.3: Linux routes all of 127/8 to lo). The issuer believes the gateway's
 * X-Forwarded-For (ISSUER_TRUST_PROXY) and nobody else's, so it throttles each client's own address:
 * one address's failures never throttle another's logins.
 */
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { Agent, request } from 'undici'
import { buildGateway } from '../../../gateway/app.js'
import { loadGatewayConfig } from '../../../gateway/config.js'
import { createLogger } from '../../../lib/server.js'
import { issuerFixture, listening, PASSWORD, register } from './fixtures.js'

/** An HTTP client whose connections leave from `localAddress`. */
function clientFrom(t: Test, localAddress: string) {
  const agent = new Agent({ localAddress })
  t.teardown(() => agent.destroy())
  return async (base: string, email: string, password: string, headers: Record<string, string> = {}) => {
    const res = await request(`${base}/auth/login`, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ email, password }),
    })
    const body = (await res.body.json()) as { code?: string }
    return `${res.statusCode}${body.code ? ` ${body.code}` : ''}`
  }
}

/** A real issuer (trusting `issuerTrust`) behind a real gateway, both listening on 127.0.0.1. */
async function gatewayInFrontOfIssuer(t: Test, issuerTrust: string) {
  const { app: issuer, dir } = await issuerFixture(t, {
    env: {
      ISSUER_TRUST_PROXY: issuerTrust,
      LOGIN_MAX_FAILURES_PER_ADDRESS: '3',
      LOGIN_MAX_FAILURES_PER_ACCOUNT_AND_ADDRESS: '100',
      LOGIN_MAX_FAILURES_PER_ACCOUNT: '100',
    },
  })
  const issuerUrl = await listening(issuer)
  const config = loadGatewayConfig({
    LOG_LEVEL: 'silent',
    KEYS_DIR: `${dir}/gateway-keys`,
    ISSUER_URL: issuer.issuer.settings.issuer,
    REVOCATION_FEED: 'off',
    TRUSTED_ISSUERS: JSON.stringify([
      {
        issuer: issuer.issuer.settings.issuer,
        jwksUri: `${issuerUrl}/.well-known/jwks.json`,
        audiences: [issuer.issuer.settings.audience],
      },
    ]),
  })
  const gateway: FastifyInstance = await buildGateway({
    config,
    logger: createLogger({ name: 'gateway', level: 'silent' }),
    routes: {
      upstreams: { issuer: issuerUrl },
      routes: [{ prefix: '/', upstream: 'issuer', auth: { mode: 'none' } }],
    },
  })
  t.teardown(() => gateway.close())
  await gateway.listen({ host: '127.0.0.1', port: 0 })
  const gatewayUrl = `http://127.0.0.1:${(gateway.server.address() as AddressInfo).port}`
  await register(issuer, 'victim@example.com')
  return { issuerUrl, gatewayUrl }
}

t.test('the issuer throttles the client behind the gateway, never the gateway', async (t) => {
  const { issuerUrl, gatewayUrl } = await gatewayInFrontOfIssuer(t, '127.0.0.1')
  const attacker = clientFrom(t, '127.0.0.2')
  const victim = clientFrom(t, '127.0.0.3')

  const answers: string[] = []
  for (let i = 0; i < 4; i++) {
    // A forged chain changes nothing: the gateway believes no one, and replaces it with the peer.
    answers.push(
      await attacker(gatewayUrl, `guess${i}@example.com`, 'wrong guess', {
        'x-forwarded-for': `203.0.113.${i}`,
      }),
    )
  }
  t.same(
    answers,
    [
      '401 KG_INVALID_CREDENTIALS',
      '401 KG_INVALID_CREDENTIALS',
      '401 KG_INVALID_CREDENTIALS',
      '429 KG_LOGIN_THROTTLED',
    ],
    '127.0.0.2 reached its per-address limit',
  )
  t.equal(
    await victim(gatewayUrl, 'victim@example.com', PASSWORD),
    '200',
    '127.0.0.3 logs in through the same gateway',
  )
  t.equal(
    await attacker(gatewayUrl, 'victim@example.com', PASSWORD),
    '429 KG_LOGIN_THROTTLED',
    '127.0.0.2 still waits',
  )

  // Straight to the issuer, past the gateway: 127.0.0.2 is not a trusted proxy, its header is ignored.
  t.equal(
    await attacker(issuerUrl, 'victim@example.com', PASSWORD, { 'x-forwarded-for': '198.51.100.9' }),
    '429 KG_LOGIN_THROTTLED',
    'a client cannot name its own address to the issuer',
  )
})

t.test('without ISSUER_TRUST_PROXY every client behind the gateway shares its address', async (t) => {
  // What issue 13 found: one address's failures lock everyone out. The default still believes no one —
  // the operator (or `keygate start`, docker-compose) names the gateway.
  const { gatewayUrl } = await gatewayInFrontOfIssuer(t, '')
  const attacker = clientFrom(t, '127.0.0.2')
  const victim = clientFrom(t, '127.0.0.3')
  for (let i = 0; i < 3; i++) await attacker(gatewayUrl, `guess${i}@example.com`, 'wrong guess')
  t.equal(await victim(gatewayUrl, 'victim@example.com', PASSWORD), '429 KG_LOGIN_THROTTLED')
})
