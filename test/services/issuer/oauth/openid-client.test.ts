/**
 * The judge: openid-client v6, unmodified, against a listening issuer — discovery (OpenID and RFC 8414),
 * client credentials, token exchange (genericGrantRequest) of access tokens and of gateway assertions,
 * introspection and revocation, authenticating
 * with a client secret (Basic and post) and with a private key JWT (a JWKS registered inline, and one served
 * at a jwks_uri).
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { exportJWK, generateKeyPair } from 'jose'
import * as client from 'openid-client'
import t from 'tap'
import { startGatewayKeys } from '../../../helpers/gateway-keys.js'
import { claimsOf, login, register } from '../fixtures.js'
import {
  ACCESS_TOKEN_TYPE,
  EXCHANGE,
  JWT_TOKEN_TYPE,
  gatewayAssertionFor,
  listeningIssuer,
  registerClient,
} from './helpers.js'

const GATEWAY = 'kgc_gateway'
const GATEWAY_SECRET = 'a gateway secret of some length'
const insecure = { execute: [client.allowInsecureRequests] }

t.test('client secret: discovery, client credentials, exchange, introspection, revocation', async (t) => {
  const f = await listeningIssuer(t, { OAUTH_INTROSPECTION_CLIENTS: GATEWAY }, [GATEWAY, GATEWAY_SECRET])
  const server = new URL(f.base)
  const registered = await registerClient(f, {
    name: 'orders',
    grant_types: ['client_credentials', EXCHANGE],
    scopes: ['profile', 'orders'],
    audiences: ['keygate-profile', 'keygate-orders'],
  })
  const config = await client.discovery(
    server,
    registered.client_id,
    undefined,
    client.ClientSecretBasic(registered.client_secret!),
    insecure,
  )
  t.equal(config.serverMetadata().token_endpoint, `${f.base}/oauth/token`)
  const viaRfc8414 = await client.discovery(
    server,
    registered.client_id,
    undefined,
    client.ClientSecretPost(registered.client_secret!),
    { ...insecure, algorithm: 'oauth2' },
  )
  t.equal(viaRfc8414.serverMetadata().issuer, f.base)

  const own = await client.clientCredentialsGrant(config, { scope: 'orders', resource: 'keygate-orders' })
  t.equal(own.token_type, 'bearer')
  t.equal(own.scope, 'orders')
  const ownByPost = await client.clientCredentialsGrant(viaRfc8414, { resource: 'keygate-orders' })
  t.equal(ownByPost.scope, 'profile orders')

  await register(f.app, 'dana@example.com')
  const dana = await login(f.app, 'dana@example.com')
  const exchanged = await client.genericGrantRequest(config, EXCHANGE, {
    subject_token: dana.accessToken,
    subject_token_type: ACCESS_TOKEN_TYPE,
    audience: 'keygate-profile',
    scope: 'profile',
  })
  t.equal(exchanged.issued_token_type, ACCESS_TOKEN_TYPE)

  const gateway = await client.discovery(
    server,
    GATEWAY,
    undefined,
    client.ClientSecretBasic(GATEWAY_SECRET),
    insecure,
  )
  const introspected = await client.tokenIntrospection(gateway, exchanged.access_token)
  t.equal(introspected.active, true)
  t.equal(introspected.sub, (await f.app.issuer.store.findUserByEmail('dana@example.com'))!.id)
  t.same(introspected.act, { sub: registered.client_id })

  await client.tokenRevocation(config, own.access_token)
  t.equal((await client.tokenIntrospection(gateway, own.access_token)).active, false, 'revoked')
  const refused = (await client
    .clientCredentialsGrant(config, { resource: 'keygate-files' })
    .catch((err: unknown) => err)) as { error?: string }
  t.equal(refused.error, 'invalid_target', 'errors reach the client as RFC 6749 errors')
})

t.test('exchange of a gateway assertion, by the client of the service it is addressed to', async (t) => {
  const gatewayKeys = await startGatewayKeys(t, { audience: 'orders' })
  const f = await listeningIssuer(t, { GATEWAY_URL: gatewayKeys.url })
  const orders = await registerClient(f, {
    name: 'orders',
    grant_types: [EXCHANGE],
    scopes: ['profile'],
    audiences: ['keygate-profile'],
    service: 'orders',
  })
  const config = await client.discovery(
    new URL(f.base),
    orders.client_id,
    undefined,
    client.ClientSecretBasic(orders.client_secret!),
    insecure,
  )
  await register(f.app, 'erin@example.com')
  const erin = await login(f.app, 'erin@example.com')
  const exchanged = await client.genericGrantRequest(config, EXCHANGE, {
    subject_token: gatewayAssertionFor(gatewayKeys, erin.accessToken),
    subject_token_type: JWT_TOKEN_TYPE,
    audience: 'keygate-profile',
  })
  t.equal(exchanged.issued_token_type, ACCESS_TOKEN_TYPE)
  const claims = claimsOf(exchanged.access_token)
  t.equal(claims.sub, claimsOf(erin.accessToken).sub, 'on behalf of the user')
  t.same(claims.act, { sub: orders.client_id }, 'orders acting')
  t.equal(claims.aud, 'keygate-profile')

  const elsewhere = gatewayAssertionFor(gatewayKeys, erin.accessToken, { aud: 'files' })
  const refused = (await client
    .genericGrantRequest(config, EXCHANGE, { subject_token: elsewhere, subject_token_type: JWT_TOKEN_TYPE })
    .catch((err: unknown) => err)) as { error?: string }
  t.equal(refused.error, 'invalid_grant', "another service's assertion is refused")
})

t.test('private_key_jwt: inline JWKS and jwks_uri', async (t) => {
  const f = await listeningIssuer(t, { OAUTH_INTROSPECTION_CLIENTS: GATEWAY }, [GATEWAY, GATEWAY_SECRET])
  const server = new URL(f.base)
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true })
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }
  const inline = await registerClient(f, {
    name: 'inline keys',
    scopes: ['jobs'],
    audiences: ['keygate-api'],
    jwks: { keys: [jwk] },
  })
  t.notOk('client_secret' in inline, 'no secret for a key client')
  const config = await client.discovery(
    server,
    inline.client_id,
    undefined,
    client.PrivateKeyJwt({ key: privateKey, kid: 'k1' }),
    insecure,
  )
  const token = await client.clientCredentialsGrant(config)
  t.equal(token.scope, 'jobs')
  await client.tokenRevocation(config, token.access_token)

  const rsa = await generateKeyPair('PS256', { extractable: true })
  const keys = { keys: [{ ...(await exportJWK(rsa.publicKey)), kid: 'r1', alg: 'PS256' }] }
  const jwksServer = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(keys))
  })
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => jwksServer.close(() => resolve())))
  const jwksUri = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks.json`
  const remote = await registerClient(f, {
    name: 'remote keys',
    scopes: ['jobs'],
    audiences: ['keygate-api'],
    jwks_uri: jwksUri,
  })
  const remoteConfig = await client.discovery(
    server,
    remote.client_id,
    undefined,
    client.PrivateKeyJwt({ key: rsa.privateKey, kid: 'r1' }),
    insecure,
  )
  t.equal((await client.clientCredentialsGrant(remoteConfig)).scope, 'jobs')
})

t.test('an introspecting resource server (plain node:http) admits live tokens only', async (t) => {
  const f = await listeningIssuer(t, { OAUTH_INTROSPECTION_CLIENTS: GATEWAY }, [GATEWAY, GATEWAY_SECRET])
  const c = await registerClient(f, { name: 'job', scopes: ['reports'], audiences: ['reports-api'] })
  const introspectionEndpoint = (
    await (await fetch(`${f.base}/.well-known/oauth-authorization-server`)).json()
  ).introspection_endpoint as string
  const resourceServer = createServer(async (req, res) => {
    const token = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1]
    if (!token) return void res.writeHead(401, { 'www-authenticate': 'Bearer' }).end()
    const answer = await fetch(introspectionEndpoint, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${GATEWAY}:${GATEWAY_SECRET}`).toString('base64')}`,
      },
      body: new URLSearchParams({ token }),
    })
    const status = (await answer.json()) as { active: boolean; aud?: string | string[]; sub?: string }
    const audiences = [status.aud ?? []].flat()
    if (!status.active || !audiences.includes('reports-api')) {
      return void res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' }).end()
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ caller: status.sub }))
  })
  await new Promise<void>((resolve) => resourceServer.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => resourceServer.close(() => resolve())))
  const rs = `http://127.0.0.1:${(resourceServer.address() as AddressInfo).port}/report`

  const tokenRes = await fetch(`${f.base}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: c.client_id,
      client_secret: c.client_secret!,
    }),
  })
  const { access_token: token } = (await tokenRes.json()) as { access_token: string }
  const ok = await fetch(rs, { headers: { authorization: `Bearer ${token}` } })
  t.equal(ok.status, 200)
  t.same(await ok.json(), { caller: c.client_id })
  t.equal((await fetch(rs, { headers: { authorization: 'Bearer forged' } })).status, 401)
  await fetch(`${f.base}/oauth/revoke`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token, client_id: c.client_id, client_secret: c.client_secret! }),
  })
  t.equal(
    (await fetch(rs, { headers: { authorization: `Bearer ${token}` } })).status,
    401,
    'revoked: refused',
  )
})
