/**
 * `/.well-known/jwks.json` and `/.well-known/openid-configuration`. keygate is not an OpenID provider (no
 * authorization endpoint, no ID tokens), so discovery lists what exists: the issuer, its keys, its refresh
 * (token) and logout (revocation) endpoints, and keygate's own login, logout-all and registration endpoints.
 */
import type { FastifyInstance } from 'fastify'
import type { IssuerSettings } from '../config.js'
import { LOGIN_METHODS } from '../login-methods.js'
import { SIGNING_ALGORITHM } from '../keys/key-document.js'
import type { KeySet } from '../keys/key-set.js'

export const JWKS_PATH = '/.well-known/jwks.json'
export const DISCOVERY_PATH = '/.well-known/openid-configuration'

export interface WellKnownRoutesOptions {
  keys: KeySet
  settings: IssuerSettings
}

/** The issuer's metadata document. */
export function discoveryDocument(settings: IssuerSettings): Record<string, unknown> {
  const at = (path: string) => `${settings.issuer}${path}`
  return {
    issuer: settings.issuer,
    jwks_uri: at(JWKS_PATH),
    token_endpoint: at('/auth/refresh'),
    revocation_endpoint: at('/auth/logout'),
    ...(settings.registrationOpen && settings.loginMethods.has('password')
      ? { registration_endpoint: at('/auth/register') }
      : {}),
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
    keygate_logout_all_endpoint: at('/auth/logout-all'),
    keygate_password_endpoint: at('/auth/password'),
    access_token_signing_alg_values_supported: [SIGNING_ALGORITHM],
    token_endpoint_auth_methods_supported: ['none'],
    grant_types_supported: ['refresh_token'],
  }
}

/** Registers the JWKS and discovery routes. */
export async function wellKnownRoutes(app: FastifyInstance, options: WellKnownRoutesOptions): Promise<void> {
  const { keys, settings } = options
  const jwksCacheControl = `public, max-age=${Math.floor(settings.jwksMaxAgeMs / 1000)}`
  const discovery = discoveryDocument(settings)

  app.get(JWKS_PATH, { logLevel: 'warn' }, async (_request, reply) => {
    reply.header('cache-control', jwksCacheControl)
    reply.type('application/json; charset=utf-8')
    return keys.jwks()
  })

  app.get(DISCOVERY_PATH, { logLevel: 'warn' }, async (_request, reply) => {
    reply.header('cache-control', jwksCacheControl)
    return discovery
  })
}
