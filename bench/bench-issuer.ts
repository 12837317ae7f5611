/**
 * The issuer every benchmarked stack trusts: RSA-2048 keys, a JWKS served over HTTP, and access tokens shaped
 * like keygate's own (RFC 9068: `typ at+jwt`, `iss sub aud iat exp jti client_id sid roles scope`), signed
 * synchronously with node:crypto. Its `iss` is a fixed name, not its address, so tokens minted once can be
 * cached on disk and stay valid across runs (the JWKS address is configured beside it, as TRUSTED_ISSUERS
 * allows).
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomUUID,
  sign,
} from 'node:crypto'
import { createHash } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyInstance } from 'fastify'

/** The `iss` of every bench token (and what the verifiers are told to trust). */
export const BENCH_ISSUER = 'http://bench-issuer.keygate.test'
/** The `aud` of every bench token. */
export const BENCH_AUDIENCE = 'keygate-api'
/** Lifetime of minted tokens, in seconds: long enough that a cached pool outlives many runs (7 days). */
export const BENCH_TOKEN_TTL_S = 7 * 24 * 3600
/** JWKS `Cache-Control: max-age`, in seconds (the gateway clamps it to JWKS_MIN_TTL, 30 s by default). */
export const BENCH_JWKS_MAX_AGE_S = 300

/** An RSA signing key as stored in the bench cache (PKCS#8 PEM) with its key id. */
export interface StoredKey {
  kid: string
  pem: string
}

export interface BenchKey {
  kid: string
  privateKey: KeyObject
  publicJwk: Record<string, unknown>
}

/** Makes a fresh RSA-2048 key (about 50–200 ms). */
export function generateBenchKey(): BenchKey {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  return benchKey(privateKey)
}

/** A key from its stored PEM. */
export function loadBenchKey(stored: StoredKey): BenchKey {
  return benchKey(createPrivateKey(stored.pem))
}

export function storeBenchKey(key: BenchKey): StoredKey {
  return { kid: key.kid, pem: key.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string }
}

function benchKey(privateKey: KeyObject): BenchKey {
  const jwk = createPublicKey(privateKey).export({ format: 'jwk' }) as { n: string; e: string; kty: string }
  // RFC 7638 thumbprint, as the real issuer names its keys.
  const kid = createHash('sha256')
    .update(JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n }))
    .digest('base64url')
  return { kid, privateKey, publicJwk: { ...jwk, kid, alg: 'RS256', use: 'sig' } }
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')

/**
 * Signs one access token for `subject` with `key` (RSA-2048 PKCS#1 v1.5 over SHA-256, about 1 ms).
 * `nowS` is the issue time in seconds.
 */
export function mintBenchToken(key: BenchKey, subject: string, nowS: number): string {
  const header = b64({ alg: 'RS256', typ: 'at+jwt', kid: key.kid })
  const payload = b64({
    iss: BENCH_ISSUER,
    sub: subject,
    aud: BENCH_AUDIENCE,
    iat: nowS,
    exp: nowS + BENCH_TOKEN_TTL_S,
    jti: randomUUID(),
    client_id: 'keygate-web',
    sid: `session-${subject}`,
    roles: ['user'],
    scope: 'openid profile orders files',
  })
  const input = `${header}.${payload}`
  return `${input}.${sign('sha256', Buffer.from(input), key.privateKey).toString('base64url')}`
}

/** The running JWKS server: `keys` is what it publishes now (tests and scenario (c) change it). */
export interface BenchIssuer {
  readonly jwksUri: string
  keys: BenchKey[]
  /** JWKS requests served so far. */
  jwksRequests: number
  close(): Promise<void>
}

/** Serves the JWKS of `keys` on a loopback port. */
export async function startBenchIssuer(keys: BenchKey[]): Promise<BenchIssuer> {
  const app: FastifyInstance = Fastify({ logger: false, forceCloseConnections: true })
  const state = {
    jwksUri: '',
    keys,
    jwksRequests: 0,
    close: () => app.close(),
  }
  app.get('/.well-known/jwks.json', async (_request, reply) => {
    state.jwksRequests++
    reply.header('cache-control', `public, max-age=${BENCH_JWKS_MAX_AGE_S}`)
    return { keys: state.keys.map((k) => k.publicJwk) }
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  state.jwksUri = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/.well-known/jwks.json`
  return state
}

/** TRUSTED_ISSUERS for a gateway that trusts the bench issuer at `jwksUri`. */
export function trustedIssuersSetting(jwksUri: string): string {
  return JSON.stringify([{ issuer: BENCH_ISSUER, jwksUri, audiences: [BENCH_AUDIENCE] }])
}
