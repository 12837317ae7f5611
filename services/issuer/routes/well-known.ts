/**
 * `/.well-known/jwks.json`, the RFC 8414 authorization server metadata and the OpenID discovery document
 * (kept for libraries that read `issuer` and `jwks_uri` there). Both list what exists and mean what the RFCs
 * say: the token endpoint serves registered clients (client credentials, token exchange), revocation and
 * introspection are RFC 7009 and RFC 7662. keygate issues access tokens, not ID tokens: there is no
 * authorization endpoint and no `response_types`. The browser's cookie endpoints are keygate's own and
 * appear only under `keygate_*` names.
 */
import type { FastifyInstance } from 'fastify'
import { JwksSchema } from '../../../lib/openapi.js'
import type { IssuerSettings } from '../config.js'
import { LOGIN_METHODS } from '../login-methods.js'
import { SIGNING_ALGORITHM } from '../keys/key-document.js'
import type { KeySet } from '../keys/key-set.js'
import { CLIENT_ASSERTION_ALGORITHMS, CLIENT_GRANT_TYPES } from '../oauth/clients.js'
import { INTROSPECTION_PATH, REVOCATION_PATH, TOKEN_PATH } from './oauth.js'

export const JWKS_PATH = '/.well-known/jwks.json'
export const DISCOVERY_PATH = '/.well-known/openid-configuration'
export const METADATA_PATH = '/.well-known/oauth-authorization-server'

export interface WellKnownRoutesOptions {
  keys: KeySet
  settings: IssuerSettings
}

const CLIENT_AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt']

/** The issuer's metadata: one document for RFC 8414 and OpenID discovery. */
export function discoveryDocument(settings: IssuerSettings): Record<string, unknown> {
  const at = (path: string) => `${settings.issuer}${path}`
  const clientAuth = (endpoint: string) => ({
    [`${endpoint}_auth_methods_supported`]: CLIENT_AUTH_METHODS,
    [`${endpoint}_auth_signing_alg_values_supported`]: CLIENT_ASSERTION_ALGORITHMS,
  })
  return {
    issuer: settings.issuer,
    jwks_uri: at(JWKS_PATH),
    token_endpoint: at(TOKEN_PATH),
    ...clientAuth('token_endpoint'),
    grant_types_supported: [...CLIENT_GRANT_TYPES],
    revocation_endpoint: at(REVOCATION_PATH),
    ...clientAuth('revocation_endpoint'),
    introspection_endpoint: at(INTROSPECTION_PATH),
    ...clientAuth('introspection_endpoint'),
    access_token_signing_alg_values_supported: [SIGNING_ALGORITHM],
    ...(settings.loginMethods.has('password') ? { keygate_login_endpoint: at('/auth/login') } : {}),
    keygate_login_methods_endpoint: at('/auth/methods'),
    keygate_login_methods_supported: LOGIN_METHODS.filter((method) => settings.loginMethods.has(method)),
    ...(settings.loginMethods.has('email-code')
      ? {
          keygate_email_code_endpoint: at('/auth/email-code'),
          keygate_email_code_verify_endpoint: at('/auth/email-code/verify'),
        }
      : {}),
    ...(settings.loginMethods.has('external')
      ? { keygate_external_login_endpoint: at('/auth/external') }
      : {}),
    keygate_refresh_endpoint: at('/auth/refresh'),
    keygate_logout_endpoint: at('/auth/logout'),
    keygate_logout_all_endpoint: at('/auth/logout-all'),
    keygate_password_endpoint: at('/auth/password'),
    ...(settings.registrationOpen && settings.loginMethods.has('password')
      ? { keygate_registration_endpoint: at('/auth/register') }
      : {}),
  }
}

/**
 * Where RFC 8414 §3 puts the metadata of this issuer: the well-known suffix inserted between the host and
 * the issuer's path, any terminating `/` removed first. An issuer without a path has it at the root alone.
 */
export function metadataPaths(issuer: string): string[] {
  const path = new URL(issuer).pathname.replace(/\/+$/, '')
  return path === '' ? [METADATA_PATH] : [METADATA_PATH, `${METADATA_PATH}${path}`]
}

/** Registers the JWKS and metadata routes. */
export async function wellKnownRoutes(app: FastifyInstance, options: WellKnownRoutesOptions): Promise<void> {
  const { keys, settings } = options
  const jwksCacheControl = `public, max-age=${Math.floor(settings.jwksMaxAgeMs / 1000)}`
  const discovery = discoveryDocument(settings)
  const Metadata = {
    type: 'object',
    required: ['issuer', 'jwks_uri', 'token_endpoint'],
    additionalProperties: true,
    properties: { issuer: { type: 'string' }, jwks_uri: { type: 'string' } },
  } as const

  app.get(
    JWKS_PATH,
    { logLevel: 'warn', schema: { response: { 200: JwksSchema } } },
    async (_request, reply) => {
      reply.header('cache-control', jwksCacheControl)
      reply.type('application/json; charset=utf-8')
      return keys.jwks()
    },
  )

  for (const path of [DISCOVERY_PATH, ...metadataPaths(settings.issuer)]) {
    app.get(path, { logLevel: 'warn', schema: { response: { 200: Metadata } } }, async (_request, reply) => {
      reply.header('cache-control', jwksCacheControl)
      return discovery
    })
  }
}
