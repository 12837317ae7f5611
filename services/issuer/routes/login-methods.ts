/**
 * `GET /auth/methods`: what a login page may offer on this issuer (LOGIN_METHODS, REGISTRATION and the
 * external issuers whose tokens log in), so the browser client and the demo show only what is on.
 */
import type { FastifyInstance } from 'fastify'
import type { IssuerSettings } from '../config.js'
import { LOGIN_METHODS } from '../login-methods.js'

export interface LoginMethodRoutesOptions {
  settings: IssuerSettings
}

const MethodsResponse = {
  type: 'object',
  required: ['methods', 'registration'],
  additionalProperties: false,
  properties: {
    methods: { type: 'array', items: { type: 'string', enum: [...LOGIN_METHODS] } },
    registration: { type: 'string', enum: ['open', 'closed'] },
    external_issuers: { type: 'array', items: { type: 'string' } },
  },
} as const

/** The public description of the login methods that are on. */
export function loginMethodsDocument(settings: IssuerSettings) {
  const methods = LOGIN_METHODS.filter((method) => settings.loginMethods.has(method))
  return {
    methods,
    // Self-registration exists only as password registration; e-mail codes follow REGISTRATION themselves.
    registration: settings.registrationOpen ? 'open' : 'closed',
    ...(settings.loginMethods.has('external')
      ? { external_issuers: settings.externalIssuers.map((issuer) => issuer.issuer) }
      : {}),
  }
}

/** Registers `GET /auth/methods`. */
export async function loginMethodRoutes(
  app: FastifyInstance,
  options: LoginMethodRoutesOptions,
): Promise<void> {
  const document = loginMethodsDocument(options.settings)
  app.get('/auth/methods', { schema: { response: { 200: MethodsResponse } } }, async (_request, reply) => {
    // Changes only with a restart; a minute of caching spares the issuer a request per page view.
    reply.header('cache-control', 'public, max-age=60')
    return document
  })
}
