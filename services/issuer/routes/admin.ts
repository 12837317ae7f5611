/**
 * `/admin/*`: keys, users (roles, disabling) and sessions, for a Bearer token with the `admin` role. Key changes go through the
 * same file and rules as the command line.
 */
import type { FastifyInstance } from 'fastify'
import { noContent } from '../../../lib/openapi.js'
import type { Accounts } from '../accounts.js'
import type { KeyAdministration } from '../keys/key-administration.js'
import type { SessionRecord, UserRecord } from '../store/types.js'
import type { Sessions } from '../sessions.js'

export interface AdminRoutesOptions {
  accounts: Accounts
  sessions: Sessions
  keyAdmin: KeyAdministration
}

/** The role the issuer's admin API requires. */
export const ADMIN_ROLE = 'admin'
const ADMIN = { auth: { mode: 'required', roles: [ADMIN_ROLE] } } as const
export const DEFAULT_PAGE_SIZE = 100
export const MAX_PAGE_SIZE = 1000

/** `?limit&offset` of the admin listings (users, clients), as strings of digits. */
export const PageQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    limit: { type: 'string', pattern: '^[0-9]{1,4}$' },
    offset: { type: 'string', pattern: '^[0-9]{1,9}$' },
  },
} as const

/** The page a listing asked for: DEFAULT_PAGE_SIZE unless given, never more than MAX_PAGE_SIZE. */
export function pageOf(query: { limit?: string; offset?: string }): { limit: number; offset: number } {
  return {
    limit: Math.min(Number(query.limit ?? DEFAULT_PAGE_SIZE), MAX_PAGE_SIZE),
    offset: Number(query.offset ?? 0),
  }
}

const Role = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$' } as const
const Roles = { type: 'array', items: Role, maxItems: 32, uniqueItems: true } as const
const Id = { type: 'string', minLength: 1, maxLength: 128 } as const
/** These POSTs take no body; an empty JSON object is tolerated for clients that always send one. */
const NoBody = { type: 'object', additionalProperties: false, maxProperties: 0 } as const
const IdParams = { type: 'object', required: ['id'], properties: { id: Id } } as const

const Time = { type: 'string', format: 'date-time' } as const
const MaybeTime = { type: ['string', 'null'], format: 'date-time' } as const

/** A signing key's metadata (keys/key-administration.ts `KeyView`), never key material. */
const KeyView = {
  type: 'object',
  required: ['kid', 'state', 'alg', 'created_at', 'activated_at', 'retired_at', 'revoked_at', 'remove_at'],
  properties: {
    kid: { type: 'string' },
    state: { type: 'string', enum: ['next', 'active', 'retired', 'revoked'] },
    alg: { type: 'string', enum: ['RS256'] },
    created_at: Time,
    activated_at: MaybeTime,
    retired_at: MaybeTime,
    revoked_at: MaybeTime,
    remove_at: MaybeTime,
  },
} as const
/** Every key, by state (next, active, retired, revoked), newest first within a state. */
const KeyList = {
  type: 'object',
  required: ['keys'],
  properties: { keys: { type: 'array', items: KeyView } },
} as const
const UserView = {
  type: 'object',
  required: ['id', 'email', 'roles', 'created_at', 'updated_at', 'disabled_at'],
  properties: {
    id: { type: 'string' },
    email: { type: 'string' },
    roles: { type: 'array', items: { type: 'string' } },
    created_at: Time,
    updated_at: Time,
    /** When an admin disabled the account; null while it may log in. */
    disabled_at: MaybeTime,
  },
} as const
const SessionView = {
  type: 'object',
  required: [
    'id',
    'user_id',
    'client_id',
    'created_at',
    'last_used_at',
    'idle_expires_at',
    'absolute_expires_at',
    'revoked_at',
    'revoked_reason',
  ],
  properties: {
    id: { type: 'string' },
    user_id: { type: 'string' },
    client_id: { type: 'string' },
    created_at: Time,
    last_used_at: Time,
    idle_expires_at: Time,
    absolute_expires_at: Time,
    revoked_at: MaybeTime,
    revoked_reason: {
      type: ['string', 'null'],
      enum: ['logout', 'logout_all', 'admin', 'password_change', 'refresh_reuse', 'disabled', null],
    },
  },
} as const

const iso = (ms: number | null | undefined) =>
  ms === null || ms === undefined ? null : new Date(ms).toISOString()

/** A user as the admin API shows it (never the password hash). */
function userView(user: UserRecord) {
  return {
    id: user.id,
    email: user.email,
    roles: user.roles,
    created_at: iso(user.createdAt),
    updated_at: iso(user.updatedAt),
    disabled_at: iso(user.disabledAt),
  }
}

function sessionView(session: SessionRecord) {
  return {
    id: session.id,
    user_id: session.userId,
    client_id: session.clientId,
    created_at: iso(session.createdAt),
    last_used_at: iso(session.lastUsedAt),
    idle_expires_at: iso(session.idleExpiresAt),
    absolute_expires_at: iso(session.absoluteExpiresAt),
    revoked_at: iso(session.revokedAt),
    revoked_reason: session.revokedReason,
  }
}

/** Registers the admin routes. */
export async function adminRoutes(app: FastifyInstance, options: AdminRoutesOptions): Promise<void> {
  const { accounts, sessions, keyAdmin } = options

  app.get('/admin/keys', { config: ADMIN, schema: { response: { 200: KeyList } } }, async () => ({
    keys: keyAdmin.list(),
  }))

  app.post(
    '/admin/keys/rotate',
    { config: ADMIN, schema: { body: { ...NoBody, nullable: true }, response: { 200: KeyList } } },
    async (request) => {
      await keyAdmin.rotate()
      request.log.info({ by: request.identity!.subject }, 'signing keys rotated')
      return { keys: keyAdmin.list() }
    },
  )

  app.post<{ Params: { kid: string } }>(
    '/admin/keys/:kid/revoke',
    {
      config: ADMIN,
      schema: {
        params: { type: 'object', properties: { kid: Id } },
        body: { ...NoBody, nullable: true },
        response: { 200: KeyList },
      },
    },
    async (request) => {
      await keyAdmin.revoke(request.params.kid)
      request.log.warn({ kid: request.params.kid, by: request.identity!.subject }, 'signing key revoked')
      return { keys: keyAdmin.list() }
    },
  )

  app.get<{ Querystring: { limit?: string; offset?: string } }>(
    '/admin/users',
    {
      config: ADMIN,
      schema: {
        querystring: PageQuery,
        response: {
          200: {
            type: 'object',
            required: ['users'],
            properties: { users: { type: 'array', items: UserView } },
          },
        },
      },
    },
    async (request) => {
      const { limit, offset } = pageOf(request.query)
      return { users: (await accounts.list(limit, offset)).map(userView) }
    },
  )

  app.post<{ Body: { email: string; password: string; roles?: string[] } }>(
    '/admin/users',
    {
      config: ADMIN,
      schema: {
        body: {
          type: 'object',
          required: ['email', 'password'],
          additionalProperties: false,
          properties: {
            email: { type: 'string', minLength: 1, maxLength: 1024 },
            password: { type: 'string', minLength: 1, maxLength: 1024 },
            roles: Roles,
          },
        },
        response: { 201: UserView },
      },
    },
    async (request, reply) => {
      const user = await accounts.create(request.body.email, request.body.password, request.body.roles)
      request.log.info({ userId: user.id, by: request.identity!.subject }, 'account created by an admin')
      return reply.code(201).send(userView(user))
    },
  )

  app.put<{ Params: { id: string }; Body: { roles: string[] } }>(
    '/admin/users/:id/roles',
    {
      config: ADMIN,
      schema: {
        params: IdParams,
        body: {
          type: 'object',
          required: ['roles'],
          additionalProperties: false,
          properties: { roles: Roles },
        },
        response: { 200: UserView },
      },
    },
    async (request) => {
      const before = await accounts.get(request.params.id)
      const user = await accounts.setRoles(request.params.id, request.body.roles)
      // Access tokens carry roles: one minted before a role was taken away would keep it until it expires.
      // A reduction revokes the user's tokens and sessions through the feed (recordUser); an addition only
      // shows at the next refresh.
      const reduced = before.roles.some((role) => !user.roles.includes(role))
      const revoked = reduced ? await sessions.revokeAll(user.id, 'admin') : 0
      request.log.info(
        { userId: user.id, roles: user.roles, reduced, sessions: revoked, by: request.identity!.subject },
        'roles changed',
      )
      return userView(user)
    },
  )

  app.post<{ Params: { id: string } }>(
    '/admin/users/:id/logout',
    {
      config: ADMIN,
      schema: {
        params: IdParams,
        body: { ...NoBody, nullable: true },
        response: { 204: noContent('Every session of the user revoked, with the tokens they issued') },
      },
    },
    async (request, reply) => {
      const user = await accounts.get(request.params.id)
      const count = await sessions.revokeAll(user.id, 'admin')
      request.log.info(
        { userId: user.id, sessions: count, by: request.identity!.subject },
        'user logged out by an admin',
      )
      return reply.code(204).send()
    },
  )

  // Disabling and enabling: a user id in the path, no body, the user as it now is.
  const userSwitch = {
    config: ADMIN,
    schema: { params: IdParams, body: { ...NoBody, nullable: true }, response: { 200: UserView } },
  }

  app.post<{ Params: { id: string } }>('/admin/users/:id/disable', userSwitch, async (request) => {
    // No login by any method, no refresh; the user's sessions, tokens, exchanged tokens and download
    // links are revoked through the feed, like a logout-all.
    const user = await accounts.disable(request.params.id, request.identity!.subject)
    request.log.info({ userId: user.id, by: request.identity!.subject }, 'user disabled')
    return userView(user)
  })

  app.post<{ Params: { id: string } }>('/admin/users/:id/enable', userSwitch, async (request) => {
    const user = await accounts.enable(request.params.id)
    request.log.info({ userId: user.id, by: request.identity!.subject }, 'user enabled')
    return userView(user)
  })

  app.get<{ Params: { id: string } }>(
    '/admin/users/:id/sessions',
    {
      config: ADMIN,
      schema: {
        params: IdParams,
        response: {
          200: {
            type: 'object',
            required: ['sessions'],
            properties: { sessions: { type: 'array', items: SessionView } },
          },
        },
      },
    },
    async (request) => {
      const user = await accounts.get(request.params.id)
      return { sessions: (await sessions.list(user.id)).map(sessionView) }
    },
  )

  app.post<{ Params: { sid: string } }>(
    '/admin/sessions/:sid/revoke',
    {
      config: ADMIN,
      schema: {
        params: { type: 'object', required: ['sid'], properties: { sid: Id } },
        body: { ...NoBody, nullable: true },
        response: { 204: noContent('The session revoked, with the tokens it issued') },
      },
    },
    async (request, reply) => {
      await sessions.revokeById(request.params.sid, 'admin')
      request.log.info(
        { sessionId: request.params.sid, by: request.identity!.subject },
        'session revoked by an admin',
      )
      return reply.code(204).send()
    },
  )
}
