/**
 * `GET /me` and `PUT /me`: who the verified caller is (subject, roles, scopes) and their stored profile.
 * Profiles are keyed by the verified identity's principal (issuer and subject), never anything the request
 * says.
 */
import type { FastifyInstance } from 'fastify'
import type { Identity } from '@keygate/fastify-auth'
import { verifiedCaller } from '../../lib/service.js'
import { displayNameFrom, MAX_DISPLAY_NAME_INPUT_CHARS } from './display-name.js'
import type { ProfileStore, StoredProfile } from './store.js'

export interface ProfileRoutesOptions {
  store: ProfileStore
  now: () => number
}

const ProfileSchema = {
  type: 'object',
  required: ['displayName', 'updatedAt'],
  properties: {
    displayName: { type: ['string', 'null'] },
    updatedAt: { type: ['string', 'null'] },
  },
} as const

const MeSchema = {
  type: 'object',
  required: ['sub', 'principal', 'roles', 'scopes', 'profile'],
  properties: {
    sub: { type: 'string' },
    principal: { type: 'string' },
    roles: { type: 'array', items: { type: 'string' } },
    scopes: { type: 'array', items: { type: 'string' } },
    profile: ProfileSchema,
  },
} as const

const PutMeBodySchema = {
  type: 'object',
  required: ['displayName'],
  additionalProperties: false,
  properties: { displayName: { type: 'string', maxLength: MAX_DISPLAY_NAME_INPUT_CHARS } },
} as const

/** The caller as `GET /me` shows it. */
export interface Me {
  sub: string
  /** Whom the profile belongs to: the subject qualified by its issuer (see lib/auth/principal.ts). */
  principal: string
  roles: readonly string[]
  scopes: readonly string[]
  profile: StoredProfile
}

function me(identity: Identity, profile: StoredProfile): Me {
  return {
    sub: identity.subject,
    principal: identity.principal,
    roles: identity.roles,
    scopes: identity.scopes,
    profile,
  }
}

export async function profileRoutes(app: FastifyInstance, options: ProfileRoutesOptions): Promise<void> {
  const { store, now } = options

  app.get('/me', { schema: { response: { 200: MeSchema } } }, async (request) => {
    const identity = verifiedCaller(request)
    return me(identity, await store.get(identity.principal))
  })

  app.put<{ Body: { displayName: string } }>(
    '/me',
    { schema: { body: PutMeBodySchema, response: { 200: MeSchema } } },
    async (request) => {
      const identity = verifiedCaller(request)
      const displayName = displayNameFrom(request.body.displayName)
      const profile = await store.setDisplayName(identity.principal, displayName, now())
      request.log.info({ principal: identity.principal }, 'display name updated')
      return me(identity, profile)
    },
  )
}
