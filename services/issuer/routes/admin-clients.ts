/**
 * `/admin/clients`: registered OAuth clients (service identities), for a Bearer token with the `admin` role,
 * the same operations as `keygate clients`. A client's secret is in the answer that creates or rotates it,
 * and nowhere else, ever.
 */
import type { FastifyInstance } from 'fastify'
import { type Clients, CLIENT_GRANT_TYPES, clientView } from '../oauth/clients.js'
import { ADMIN_ROLE, PageQuery, pageOf } from './admin.js'

export interface AdminClientRoutesOptions {
  clients: Clients
}

const ADMIN = { auth: { mode: 'required', roles: [ADMIN_ROLE] } } as const
/** An RFC 6749 §3.3 scope token. */
const Scope = { type: 'string', pattern: '^[\\x21\\x23-\\x5B\\x5D-\\x7E]{1,128}$' } as const
const Audience = { type: 'string', minLength: 1, maxLength: 256, pattern: '^[^\\s]+$' } as const
const ClientIdParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 128 } },
} as const
const Jwk = { type: 'object', required: ['kty'], properties: { kty: { type: 'string' } } } as const

const NewClientBody = {
  type: 'object',
  required: ['name', 'grant_types', 'audiences'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 200 },
    grant_types: {
      type: 'array',
      minItems: 1,
      uniqueItems: true,
      items: { type: 'string', enum: [...CLIENT_GRANT_TYPES] },
    },
    scopes: { type: 'array', maxItems: 64, uniqueItems: true, items: Scope },
    audiences: { type: 'array', minItems: 1, maxItems: 32, uniqueItems: true, items: Audience },
    /** The gateway upstream the client runs as: the gateway's assertions to it may be exchanged. */
    service: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' },
    jwks: {
      type: 'object',
      required: ['keys'],
      properties: { keys: { type: 'array', minItems: 1, maxItems: 16, items: Jwk } },
    },
    jwks_uri: { type: 'string', minLength: 1, maxLength: 2048, pattern: '^https?://' },
  },
} as const

const ClientViewSchema = {
  type: 'object',
  required: ['client_id', 'name', 'token_endpoint_auth_method', 'grant_types', 'scopes', 'audiences'],
  properties: {
    client_id: { type: 'string' },
    name: { type: 'string' },
    token_endpoint_auth_method: { type: 'string' },
    grant_types: { type: 'array', items: { type: 'string' } },
    scopes: { type: 'array', items: { type: 'string' } },
    audiences: { type: 'array', items: { type: 'string' } },
    service: { type: 'string' },
    jwks_uri: { type: 'string' },
    created_at: { type: 'string' },
    updated_at: { type: 'string' },
    disabled_at: { type: ['string', 'null'] },
    client_secret: { type: 'string' },
  },
} as const
const ErrorResponse = {
  type: 'object',
  required: ['error', 'code', 'message'],
  properties: { error: { type: 'string' }, code: { type: 'string' }, message: { type: 'string' } },
} as const
const Errors = { 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse, 404: ErrorResponse } as const

interface NewClientRequest {
  name: string
  grant_types: string[]
  scopes?: string[]
  audiences: string[]
  service?: string
  jwks?: { keys: Record<string, unknown>[] }
  jwks_uri?: string
}

/** Registers the client administration routes. */
export async function adminClientRoutes(
  app: FastifyInstance,
  options: AdminClientRoutesOptions,
): Promise<void> {
  const { clients } = options

  app.post<{ Body: NewClientRequest }>(
    '/admin/clients',
    { config: ADMIN, schema: { body: NewClientBody, response: { 201: ClientViewSchema, ...Errors } } },
    async (request, reply) => {
      const body = request.body
      const { client, secret } = await clients.create({
        name: body.name,
        grantTypes: body.grant_types,
        scopes: body.scopes ?? [],
        audiences: body.audiences,
        ...(body.service === undefined ? {} : { service: body.service }),
        ...(body.jwks === undefined ? {} : { jwks: body.jwks }),
        ...(body.jwks_uri === undefined ? {} : { jwksUri: body.jwks_uri }),
      })
      request.log.info({ clientId: client.id, by: request.identity!.subject }, 'client registered')
      reply.header('cache-control', 'no-store')
      return reply
        .code(201)
        .send({ ...clientView(client), ...(secret === undefined ? {} : { client_secret: secret }) })
    },
  )

  app.get<{ Querystring: { limit?: string; offset?: string } }>(
    '/admin/clients',
    {
      config: ADMIN,
      schema: {
        querystring: PageQuery,
        response: {
          200: { type: 'object', properties: { clients: { type: 'array', items: ClientViewSchema } } },
          ...Errors,
        },
      },
    },
    async (request) => {
      const { limit, offset } = pageOf(request.query)
      return { clients: (await clients.list(limit, offset)).map(clientView) }
    },
  )

  app.get<{ Params: { id: string } }>(
    '/admin/clients/:id',
    { config: ADMIN, schema: { params: ClientIdParams, response: { 200: ClientViewSchema, ...Errors } } },
    async (request) => clientView(await clients.get(request.params.id)),
  )

  app.post<{ Params: { id: string } }>(
    '/admin/clients/:id/rotate-secret',
    { config: ADMIN, schema: { params: ClientIdParams, response: { 200: ClientViewSchema, ...Errors } } },
    async (request, reply) => {
      const { client, secret } = await clients.rotateSecret(request.params.id)
      request.log.info({ clientId: client.id, by: request.identity!.subject }, 'client secret rotated')
      reply.header('cache-control', 'no-store')
      return { ...clientView(client), client_secret: secret }
    },
  )

  app.post<{ Params: { id: string } }>(
    '/admin/clients/:id/disable',
    { config: ADMIN, schema: { params: ClientIdParams, response: { 200: ClientViewSchema, ...Errors } } },
    async (request) => {
      const client = await clients.disable(request.params.id)
      request.log.warn({ clientId: client.id, by: request.identity!.subject }, 'client disabled')
      return clientView(client)
    },
  )
}
