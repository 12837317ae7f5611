/**
 * External identities: `POST /auth/external` logs in with a trusted external issuer's token (answering
 * like password login); `GET`/`POST /auth/identities` list and link the logged-in user's identities;
 * `/admin/users/:id/identities` lists, links and removes a user's identities for an admin. Logging in and
 * linking need LOGIN_METHODS `external`; listing and removing work whatever the methods.
 */
import type { FastifyInstance } from 'fastify'
import { KeygateError } from '../../../lib/errors.js'
import { noContent } from '../../../lib/openapi.js'
import type { IssuerSettings } from '../config.js'
import type { ExternalLogin } from '../external-login.js'
import { requireLoginMethod } from '../login-methods.js'
import type { Sessions } from '../sessions.js'
import type { IssuerStore, LinkedIdentity } from '../store/types.js'
import { ADMIN_ROLE } from './admin.js'
import {
  answerNoStore,
  ErrorResponse,
  sendSession,
  type SessionAnswerOptions,
  TokenResponse,
} from './session-answer.js'

export interface ExternalRoutesOptions extends SessionAnswerOptions {
  settings: IssuerSettings
  external: ExternalLogin
  sessions: Sessions
  store: IssuerStore
}

const REQUIRED = { auth: { mode: 'required' } } as const
const ADMIN = { auth: { mode: 'required', roles: [ADMIN_ROLE] } } as const

/** A compact JWT is far smaller; this only caps the work (the verifier has its own cap). */
const Token = { type: 'string', minLength: 1, maxLength: 16_384 } as const
const TokenBody = {
  type: 'object',
  required: ['token'],
  additionalProperties: false,
  properties: { token: Token },
} as const
const Id = { type: 'string', minLength: 1, maxLength: 128 } as const
const IdParams = { type: 'object', required: ['id'], properties: { id: Id } } as const
const IdentityKey = {
  type: 'object',
  required: ['issuer', 'subject'],
  additionalProperties: false,
  properties: {
    issuer: { type: 'string', minLength: 1, maxLength: 2048 },
    subject: { type: 'string', minLength: 1, maxLength: 1024 },
  },
} as const

const IdentityView = {
  type: 'object',
  required: ['issuer', 'subject', 'user_id', 'linked_by', 'linked_at'],
  properties: {
    issuer: { type: 'string' },
    subject: { type: 'string' },
    user_id: { type: 'string' },
    email: { type: ['string', 'null'] },
    linked_by: { type: 'string', enum: ['email', 'user', 'admin'] },
    linked_at: { type: 'string' },
  },
} as const
const IdentityList = {
  type: 'object',
  required: ['identities'],
  properties: { identities: { type: 'array', items: IdentityView } },
} as const

const Errors = {
  400: ErrorResponse,
  401: ErrorResponse,
  403: ErrorResponse,
  404: ErrorResponse,
  409: ErrorResponse,
  503: ErrorResponse,
} as const

function identityView(identity: LinkedIdentity) {
  return {
    issuer: identity.issuer,
    subject: identity.subject,
    user_id: identity.userId,
    email: identity.email,
    linked_by: identity.linkedBy,
    linked_at: new Date(identity.linkedAt).toISOString(),
  }
}

/** Registers the external login and identity routes. */
export async function externalRoutes(app: FastifyInstance, options: ExternalRoutesOptions): Promise<void> {
  const { settings, external, sessions, store } = options
  answerNoStore(app)

  app.post<{ Body: { token: string } }>(
    '/auth/external',
    { schema: { body: TokenBody, response: { 200: TokenResponse, ...Errors } } },
    async (request, reply) => {
      requireLoginMethod(settings.loginMethods, 'external')
      const { user, linked } = await external.login(request.body.token)
      const grant = await sessions.start(user, settings.clientId)
      request.log.info(
        { userId: user.id, sessionId: grant.session.id, method: 'external', linked },
        'logged in',
      )
      return sendSession(reply, grant, options)
    },
  )

  app.get(
    '/auth/identities',
    { config: REQUIRED, schema: { response: { 200: IdentityList, ...Errors } } },
    async (request) => ({
      identities: (await store.identities.listForUser(request.identity!.subject)).map(identityView),
    }),
  )

  app.post<{ Body: { token: string } }>(
    '/auth/identities',
    { config: REQUIRED, schema: { body: TokenBody, response: { 201: IdentityView, ...Errors } } },
    async (request, reply) => {
      requireLoginMethod(settings.loginMethods, 'external')
      const linked = await external.linkWithToken(request.identity!.subject, request.body.token)
      return reply.code(201).send(identityView(linked))
    },
  )

  app.get<{ Params: { id: string } }>(
    '/admin/users/:id/identities',
    { config: ADMIN, schema: { params: IdParams, response: { 200: IdentityList, ...Errors } } },
    async (request) => {
      if (!(await store.findUserById(request.params.id))) throw new KeygateError('KG_USER_NOT_FOUND')
      return { identities: (await store.identities.listForUser(request.params.id)).map(identityView) }
    },
  )

  app.post<{ Params: { id: string }; Body: { issuer: string; subject: string } }>(
    '/admin/users/:id/identities',
    {
      config: ADMIN,
      schema: { params: IdParams, body: IdentityKey, response: { 201: IdentityView, ...Errors } },
    },
    async (request, reply) => {
      const linked = await external.linkByAdmin(request.params.id, request.body.issuer, request.body.subject)
      request.log.info(
        { userId: request.params.id, by: request.identity!.subject },
        'admin linked an external identity',
      )
      return reply.code(201).send(identityView(linked))
    },
  )

  app.delete<{ Params: { id: string }; Querystring: { issuer: string; subject: string } }>(
    '/admin/users/:id/identities',
    {
      config: ADMIN,
      schema: {
        params: IdParams,
        querystring: IdentityKey,
        response: { 204: noContent('The identity unlinked'), 404: ErrorResponse, 400: ErrorResponse },
      },
    },
    async (request, reply) => {
      const { issuer, subject } = request.query
      if (!(await store.identities.unlink(request.params.id, issuer, subject))) {
        throw new KeygateError('KG_IDENTITY_NOT_FOUND')
      }
      request.log.info(
        { userId: request.params.id, issuer, subject, by: request.identity!.subject },
        'external identity unlinked',
      )
      return reply.code(204).send()
    },
  )
}
