/**
 * Shared setup for the OAuth tests: an issuer with an admin, clients registered through the admin API, and
 * form requests to the OAuth endpoints.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { clientSecretHash } from '../../../../services/issuer/oauth/clients.js'
import type { Test } from 'tap'
import type { GatewayKeys } from '../../../helpers/gateway-keys.js'
import { type IssuerFixture, issuerFixture, login, bearer, claimsOf, headerOf } from '../fixtures.js'

export const ADMIN_EMAIL = 'admin@example.com'
export const ADMIN_PASSWORD = 'an admin passphrase'
export const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'
/** RFC 8693 subject type of a gateway assertion. */
export const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt'

/** The assertion the gateway would send upstream for `accessToken`; `claims` override. */
export function gatewayAssertionFor(
  gateway: GatewayKeys,
  accessToken: string,
  claims: Record<string, unknown> = {},
): string {
  const at = claimsOf(accessToken)
  return gateway.assert({
    sub: at.sub,
    sid: at.sid,
    roles: at.roles,
    scope: at.scope,
    client_id: at.client_id,
    at_jti: at.jti,
    at_iat: at.iat,
    at_iss: at.iss,
    at_kid: headerOf(accessToken).kid,
    ...claims,
  })
}

export interface OAuthFixture extends IssuerFixture {
  adminToken: string
}

/** An issuer with an admin account (and whatever `env` adds), ready. */
export async function oauthFixture(t: Test, env: Record<string, string> = {}): Promise<OAuthFixture> {
  const fixture = await issuerFixture(t, {
    env: { KEYGATE_ADMIN_EMAIL: ADMIN_EMAIL, KEYGATE_ADMIN_PASSWORD: ADMIN_PASSWORD, ...env },
  })
  const { accessToken } = await login(fixture.app, ADMIN_EMAIL, ADMIN_PASSWORD)
  return { ...fixture, adminToken: accessToken }
}

export interface RegisteredClient {
  client_id: string
  client_secret?: string
  [name: string]: unknown
}

/** Registers a client through the admin API (throws unless 201). */
export async function registerClient(
  f: OAuthFixture,
  body: Record<string, unknown>,
): Promise<RegisteredClient> {
  const res = await f.app.inject({
    method: 'POST',
    url: '/admin/clients',
    headers: bearer(f.adminToken),
    payload: { grant_types: ['client_credentials'], ...body },
  })
  if (res.statusCode !== 201) throw new Error(`client registration failed: ${res.statusCode} ${res.body}`)
  return res.json()
}

/** POSTs a form to an OAuth endpoint. */
export function postForm(
  app: FastifyInstance,
  url: string,
  form: Record<string, string | string[]>,
  headers: Record<string, string> = {},
) {
  const params = new URLSearchParams()
  for (const [name, value] of Object.entries(form)) {
    for (const v of Array.isArray(value) ? value : [value]) params.append(name, v)
  }
  return app.inject({
    method: 'POST',
    url,
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    payload: params.toString(),
  })
}

/** HTTP Basic client credentials (RFC 6749 §2.3.1: each part form-urlencoded first). */
export function basic(id: string, secret: string): Record<string, string> {
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+')
  return { authorization: `Basic ${Buffer.from(`${enc(id)}:${enc(secret)}`).toString('base64')}` }
}

/**
 * Puts a secret client with a chosen id straight into the store: settings that list client ids
 * (OAUTH_INTROSPECTION_CLIENTS) are read at start, before the admin API could generate one.
 */
export async function storeClient(
  app: FastifyInstance,
  id: string,
  secret: string,
  fields: { scopes?: string[]; audiences?: string[]; grantTypes?: string[]; service?: string } = {},
): Promise<void> {
  const now = Date.now()
  await app.issuer.store.clients.createClient({
    id,
    name: id,
    authMethod: 'client_secret',
    secretHash: clientSecretHash(secret),
    jwks: null,
    jwksUri: null,
    grantTypes: fields.grantTypes ?? ['client_credentials'],
    scopes: fields.scopes ?? ['introspect'],
    audiences: fields.audiences ?? ['keygate-api'],
    createdAt: now,
    updatedAt: now,
    disabledAt: null,
    service: fields.service ?? null,
  })
}

/**
 * An issuer listening on loopback whose ISSUER_URL is its own address (standard clients check `issuer`
 * against where they found it). The port is found first (a probe listens on 0 and lets go), since the
 * issuer URL is fixed when the issuer is built. `client`: a secret client stored before anything runs.
 */
export async function listeningIssuer(
  t: Test,
  env: Record<string, string> = {},
  client?: [id: string, secret: string],
): Promise<OAuthFixture & { base: string }> {
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address() as AddressInfo
  await new Promise<void>((resolve) => probe.close(() => resolve()))
  const base = `http://127.0.0.1:${port}`
  const f = await oauthFixture(t, { ISSUER_URL: base, ...env })
  await f.app.listen({ host: '127.0.0.1', port })
  if (client) await storeClient(f.app, ...client)
  return { ...f, base }
}
