/**
 * Registered clients (service identities): created, listed, given a new secret and disabled by the admin
 * API and `keygate clients`. A secret is 256 random bits, shown once and stored as its SHA-256 hash (a
 * random secret needs no slow hash: nothing to guess). Disabling a client also revokes every token it got
 * for itself (a `user` revocation of its `client_id`, which is their `sub`).
 */
import { createHash, randomBytes } from 'node:crypto'
import { importJWK } from 'jose'
import { KeygateError } from '../../../lib/errors.js'
import type { Revocations } from '../feed/revocations.js'
import type { ClientAuthMethod, ClientRecord, ClientStore } from '../store/types.js'

export const GRANT_CLIENT_CREDENTIALS = 'client_credentials'
export const GRANT_TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
/** The grant types a client may be registered for. */
export const CLIENT_GRANT_TYPES = [GRANT_CLIENT_CREDENTIALS, GRANT_TOKEN_EXCHANGE] as const
/** Prefix of generated client ids: never a user's id (a UUID), so a client's `sub` names no user. */
export const CLIENT_ID_PREFIX = 'kgc_'
/** Algorithms a client may sign its assertions with: asymmetric only (RFC 7523 with RFC 8725). */
export const CLIENT_ASSERTION_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
]

/** What an admin registers. */
export interface NewClient {
  name: string
  grantTypes: string[]
  scopes: string[]
  audiences: string[]
  /** The gateway upstream the client runs as (see ClientRecord.service). */
  service?: string
  /** Public keys for private_key_jwt; without them (and without `jwksUri`) the client gets a secret. */
  jwks?: { keys: Record<string, unknown>[] }
  jwksUri?: string
}

/** A client as the admin API and the command line show it (never its secret hash). */
export interface ClientView {
  client_id: string
  name: string
  token_endpoint_auth_method: string
  grant_types: string[]
  scopes: string[]
  audiences: string[]
  service?: string
  jwks_uri?: string
  created_at: string
  updated_at: string
  disabled_at: string | null
}

export interface ClientsOptions {
  store: ClientStore
  revocations: Pick<Revocations, 'recordUser'>
  now: () => number
}

/** SHA-256 of a client secret, as stored. */
export function clientSecretHash(secret: string): string {
  return createHash('sha256').update(secret).digest('base64url')
}

/** The view of a client (see ClientView). */
export function clientView(client: ClientRecord): ClientView {
  const iso = (ms: number) => new Date(ms).toISOString()
  return {
    client_id: client.id,
    name: client.name,
    token_endpoint_auth_method:
      client.authMethod === 'private_key_jwt' ? 'private_key_jwt' : 'client_secret_basic',
    grant_types: client.grantTypes,
    scopes: client.scopes,
    audiences: client.audiences,
    ...(client.service === null ? {} : { service: client.service }),
    ...(client.jwksUri === null ? {} : { jwks_uri: client.jwksUri }),
    created_at: iso(client.createdAt),
    updated_at: iso(client.updatedAt),
    disabled_at: client.disabledAt === null ? null : iso(client.disabledAt),
  }
}

/** A gateway upstream's name, as the route table spells it. */
export const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

const invalid = (message: string) => new KeygateError('KG_INVALID_REQUEST', { message })

/** Registered clients (see the file comment). */
export class Clients {
  readonly #o: ClientsOptions

  constructor(options: ClientsOptions) {
    this.#o = options
  }

  /** Registers a client; returns it with its secret (shown this once) when it authenticates by secret. */
  async create(input: NewClient): Promise<{ client: ClientRecord; secret: string | undefined }> {
    const authMethod: ClientAuthMethod =
      input.jwks !== undefined || input.jwksUri !== undefined ? 'private_key_jwt' : 'client_secret'
    if (input.jwks !== undefined && input.jwksUri !== undefined) {
      throw invalid('Give either jwks or jwks_uri, not both')
    }
    if (input.jwks !== undefined) await checkPublicKeys(input.jwks)
    if (input.jwksUri !== undefined && !/^https?:\/\//.test(input.jwksUri)) {
      throw invalid('jwks_uri must be an http(s) URL')
    }
    // The admin API's schema says the same; the command line reaches here with whatever was typed.
    if (input.name.trim() === '' || input.name.length > 200) throw invalid('name must be 1 to 200 characters')
    if (input.audiences.length === 0 || input.audiences.some((a) => !/^\S{1,256}$/.test(a))) {
      throw invalid('audiences must name at least one resource server, without spaces')
    }
    if (input.scopes.some((s) => !/^[\x21\x23-\x5B\x5D-\x7E]{1,128}$/.test(s))) {
      throw invalid('scopes must be scope tokens (RFC 6749 §3.3)')
    }
    if (input.service !== undefined && !SERVICE_NAME.test(input.service)) {
      throw invalid('service must be an upstream name (letters, digits, ., _, -; at most 64)')
    }
    if (input.grantTypes.length === 0) throw invalid('grant types must name at least one grant')
    for (const grant of input.grantTypes) {
      if (!(CLIENT_GRANT_TYPES as readonly string[]).includes(grant)) {
        throw invalid(`Unknown grant type ${grant.slice(0, 64)}; known: ${CLIENT_GRANT_TYPES.join(', ')}`)
      }
    }
    const secret = authMethod === 'client_secret' ? randomBytes(32).toString('base64url') : undefined
    const now = this.#o.now()
    const client: ClientRecord = {
      id: `${CLIENT_ID_PREFIX}${randomBytes(12).toString('base64url')}`,
      name: input.name,
      authMethod,
      secretHash: secret === undefined ? null : clientSecretHash(secret),
      jwks: input.jwks ?? null,
      jwksUri: input.jwksUri ?? null,
      grantTypes: [...new Set(input.grantTypes)],
      scopes: [...new Set(input.scopes)],
      audiences: [...new Set(input.audiences)],
      createdAt: now,
      updatedAt: now,
      disabledAt: null,
      service: input.service ?? null,
    }
    await this.#o.store.createClient(client)
    return { client, secret }
  }

  async list(limit: number, offset: number): Promise<ClientRecord[]> {
    return this.#o.store.listClients({ limit, offset })
  }

  /** The client; KG_CLIENT_NOT_FOUND when there is none. */
  async get(id: string): Promise<ClientRecord> {
    const client = await this.#o.store.findClient(id)
    if (!client) throw new KeygateError('KG_CLIENT_NOT_FOUND')
    return client
  }

  /** Gives a secret client a new secret (the old one stops working at once); returns it, shown once. */
  async rotateSecret(id: string): Promise<{ client: ClientRecord; secret: string }> {
    const client = await this.get(id)
    if (client.authMethod !== 'client_secret') {
      throw new KeygateError('KG_INVALID_REQUEST', {
        message: 'This client authenticates with private_key_jwt; it has no secret',
      })
    }
    const secret = randomBytes(32).toString('base64url')
    await this.#o.store.setClientSecretHash(id, clientSecretHash(secret), this.#o.now())
    return { client: await this.get(id), secret }
  }

  /** Disables a client and revokes the tokens it got for itself. */
  async disable(id: string): Promise<ClientRecord> {
    if (!(await this.#o.store.disableClient(id, this.#o.now()))) throw new KeygateError('KG_CLIENT_NOT_FOUND')
    await this.#o.revocations.recordUser(id, 'admin')
    return this.get(id)
  }
}

/** A JWKS of public, asymmetric keys, each usable by jose; anything else is refused at registration. */
async function checkPublicKeys(jwks: { keys: Record<string, unknown>[] }): Promise<void> {
  if (!Array.isArray(jwks.keys) || jwks.keys.length === 0) throw invalid('jwks must have at least one key')
  for (const jwk of jwks.keys) {
    if (jwk.kty === 'oct' || 'd' in jwk || 'k' in jwk) {
      throw invalid('jwks must hold public keys only (no symmetric or private keys)')
    }
    try {
      await importJWK(jwk as Parameters<typeof importJWK>[0], algorithmOf(jwk))
    } catch {
      throw invalid('jwks holds a key that cannot be used')
    }
  }
}

const EC_ALGORITHMS: Record<string, string> = { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' }

/** The algorithm a JWK is meant for: its `alg`, else the usual one of its key type. */
function algorithmOf(jwk: Record<string, unknown>): string {
  if (typeof jwk.alg === 'string') return jwk.alg
  if (jwk.kty === 'EC') return EC_ALGORITHMS[String(jwk.crv)] ?? 'ES256'
  return jwk.kty === 'OKP' ? 'EdDSA' : 'RS256'
}
