/**
 * A stand-in issuer for verifier and gateway tests: real RSA keys, a real JWKS served over HTTP on port 0,
 * and `mint()` for access tokens shaped like the issuer's (RFC 9068), with any claim or header overridden.
 * Tests can rotate keys, change the JWKS response, or take the server down, and count its requests.
 */
import { randomUUID } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyReply } from 'fastify'
import {
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  type JWK,
  type JWTHeaderParameters,
  SignJWT,
} from 'jose'

export interface TestKey {
  kid: string
  privateKey: CryptoKey
  publicJwk: JWK
}

export async function makeKey(): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true })
  const publicJwk = await exportJWK(publicKey)
  const kid = await calculateJwkThumbprint(publicJwk)
  return { kid, privateKey, publicJwk: { ...publicJwk, kid, alg: 'RS256', use: 'sig' } }
}

export type JwksResponder = (reply: FastifyReply) => unknown

export interface TokenIssuer {
  /** Base URL, also the `iss` of minted tokens. */
  url: string
  jwksUri: string
  audience: string
  /** Keys currently published, the first one signs. */
  keys: TestKey[]
  /** Number of JWKS requests served so far. */
  jwksRequests: number
  /** `Cache-Control` max-age of the JWKS response, in seconds. */
  maxAge: number
  /** Replaces the JWKS handler (garbage, redirects, hangs…); `undefined` restores the normal one. */
  respond: JwksResponder | undefined
  /** Signs an access token; `claims` and `header` override the defaults (`undefined` removes a claim). */
  mint(
    claims?: Record<string, unknown>,
    header?: Partial<JWTHeaderParameters>,
    key?: TestKey,
  ): Promise<string>
  /** Publishes a new key and signs with it from now on; the old one stays published unless `drop`. */
  rotate(options?: { drop?: boolean }): Promise<TestKey>
  close(): Promise<void>
}

export async function startTokenIssuer(options: { audience?: string } = {}): Promise<TokenIssuer> {
  const app = Fastify({ logger: false, forceCloseConnections: true })
  const state: TokenIssuer = {
    url: '',
    jwksUri: '',
    audience: options.audience ?? 'keygate-api',
    keys: [await makeKey()],
    jwksRequests: 0,
    maxAge: 300,
    respond: undefined,
    async mint(claims = {}, header = {}, key) {
      const signer = key ?? state.keys[0]!
      const now = Math.floor(Date.now() / 1000)
      const payload: Record<string, unknown> = {
        iss: state.url,
        sub: 'user-1',
        aud: state.audience,
        iat: now,
        exp: now + 900,
        jti: randomUUID(),
        client_id: 'keygate-web',
        sid: 'session-1',
        roles: ['user'],
        scope: 'profile orders',
        ...claims,
      }
      for (const [k, v] of Object.entries(payload)) if (v === undefined) delete payload[k]
      const protectedHeader = {
        alg: 'RS256',
        typ: 'at+jwt',
        kid: signer.kid,
        ...header,
      } as JWTHeaderParameters
      return new SignJWT(payload).setProtectedHeader(protectedHeader).sign(signer.privateKey)
    },
    async rotate({ drop = false } = {}) {
      const key = await makeKey()
      state.keys = drop ? [key] : [key, ...state.keys]
      return key
    },
    close: () => app.close(),
  }
  app.get('/.well-known/jwks.json', async (_request, reply) => {
    state.jwksRequests++
    if (state.respond) return state.respond(reply)
    reply.header('cache-control', `public, max-age=${state.maxAge}`)
    return { keys: state.keys.map((k) => k.publicJwk) }
  })
  app.get('/.well-known/openid-configuration', async () => ({
    issuer: state.url,
    jwks_uri: state.jwksUri,
  }))
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address() as AddressInfo
  state.url = `http://127.0.0.1:${address.port}`
  state.jwksUri = `${state.url}/.well-known/jwks.json`
  return state
}
