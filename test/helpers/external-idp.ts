/**
 * A stand-in for a hosted identity provider (Clerk, Auth0, Keycloak…) as a process of its own, with its own
 * RSA key: `node --conditions=keygate-source --import tsx test/helpers/external-idp.ts` listens on a free loopback port, prints
 * `external idp listening on <url>`, publishes its JWKS and mints tokens for keygate (`POST /token
 * {sub, email, shape?}` → `{access_token}`, `email_verified: true`): RFC 9068 access tokens addressed to
 * EXTERNAL_IDP_AUDIENCE, or OpenID Connect ID tokens (`typ: JWT`, `aud` = its web client, no `jti`,
 * `client_id` or `scope`). It also serves RFC 7662 introspection (`POST /introspect`, client
 * EXTERNAL_IDP_CLIENT_ID with the secret the parent passes in EXTERNAL_IDP_CLIENT_SECRET) over the tokens it
 * minted, `POST /revoke {token}` (a logout at the provider), and `POST /introspection-mode {mode}` to make
 * introspection fail. Start it with `startExternalIdp`.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT } from 'jose'

/** The audience the provider's access tokens for keygate carry. */
export const EXTERNAL_IDP_AUDIENCE = 'keygate'
/** The provider's browser client: the `aud` of its ID tokens. */
export const EXTERNAL_IDP_WEB_CLIENT = 'frontdoor-web'
/** keygate's client at the provider, for introspection. */
export const EXTERNAL_IDP_CLIENT_ID = 'keygate-introspector'

/** What a token looks like: an RFC 9068 access token for keygate, or an OpenID Connect ID token. */
export type TokenShape = 'access_token' | 'id_token'

/** How `/introspect` answers: as it should, 500, not JSON, or never. */
export type IntrospectionMode = 'normal' | 'error' | 'garbage' | 'hang'

async function main(): Promise<void> {
  const { privateKey, publicKey } = await generateKeyPair('RS256')
  const jwk = await exportJWK(publicKey)
  const kid = await calculateJwkThumbprint(jwk)
  const clientSecret = process.env.EXTERNAL_IDP_CLIENT_SECRET ?? ''
  const app = Fastify({ logger: false, forceCloseConnections: true })
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) =>
    done(null, Object.fromEntries(new URLSearchParams(body as string))),
  )
  let url = ''
  /** Every token minted, by value: its subject and expiry (epoch seconds), and whether it was revoked. */
  const minted = new Map<string, { sub: string; exp: number; revoked: boolean }>()
  let mode: IntrospectionMode = 'normal'
  let introspections = 0

  app.get('/.well-known/jwks.json', async () => ({ keys: [{ ...jwk, kid, alg: 'RS256', use: 'sig' }] }))
  app.post<{ Body: { sub: string; email: string; shape?: TokenShape } }>('/token', async (request) => {
    const now = Math.floor(Date.now() / 1000)
    const exp = now + 300
    const { sub, email, shape = 'access_token' } = request.body
    const idToken = shape === 'id_token'
    const jwt = new SignJWT({
      ...(idToken ? { azp: EXTERNAL_IDP_WEB_CLIENT } : { client_id: EXTERNAL_IDP_WEB_CLIENT }),
      email,
      email_verified: true,
    })
      .setProtectedHeader({ alg: 'RS256', typ: idToken ? 'JWT' : 'at+jwt', kid })
      .setIssuer(url)
      .setSubject(sub)
      .setAudience(idToken ? EXTERNAL_IDP_WEB_CLIENT : EXTERNAL_IDP_AUDIENCE)
      .setIssuedAt(now)
      .setExpirationTime(exp)
    if (!idToken) jwt.setJti(randomUUID())
    const token = await jwt.sign(privateKey)
    minted.set(token, { sub, exp, revoked: false })
    return { access_token: token }
  })
  app.post<{ Body: { token: string } }>('/revoke', async (request) => {
    const record = minted.get(request.body.token)
    if (record) record.revoked = true
    return { revoked: record !== undefined }
  })
  app.post<{ Body: { mode: IntrospectionMode } }>('/introspection-mode', async (request) => {
    mode = request.body.mode
    return { mode }
  })
  app.get('/stats', async () => ({ introspections }))
  app.post<{ Body: Record<string, string> }>('/introspect', async (request, reply) => {
    introspections++
    if (mode === 'hang') return new Promise(() => {})
    if (mode === 'error') return reply.code(500).send({ error: 'server_error' })
    if (mode === 'garbage') return reply.type('text/html').send('<html>maintenance</html>')
    const expected = `Basic ${Buffer.from(`${EXTERNAL_IDP_CLIENT_ID}:${clientSecret}`).toString('base64')}`
    if (clientSecret === '' || request.headers.authorization !== expected) {
      return reply.code(401).send({ error: 'invalid_client' })
    }
    const record = minted.get(request.body?.token ?? '')
    const now = Math.floor(Date.now() / 1000)
    if (!record || record.revoked || record.exp <= now) return { active: false }
    return { active: true, iss: url, sub: record.sub, exp: record.exp, client_id: EXTERNAL_IDP_WEB_CLIENT }
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  process.stdout.write(`external idp listening on ${url}\n`)
  process.once('SIGTERM', () => void app.close().then(() => process.exit(0)))
}

export interface ExternalIdp {
  url: string
  jwksUri: string
  introspectionEndpoint: string
  /** keygate's credentials at the provider's introspection endpoint. */
  introspectionClient: { id: string; secret: string }
  /** A token for `sub` with a verified `email`: an access token for keygate unless `shape` says otherwise. */
  token(sub: string, email: string, shape?: TokenShape): Promise<string>
  /** Revokes a token at the provider: its introspection says inactive from now on. */
  revoke(token: string): Promise<void>
  /** Makes the introspection endpoint misbehave (or behave again). */
  introspectionMode(mode: IntrospectionMode): Promise<void>
  /** Introspection requests served so far. */
  introspections(): Promise<number>
  /** Stops the process (the provider's outage). */
  stop(): Promise<void>
}

async function post(url: string, body: unknown): Promise<unknown> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  if (!res.ok) throw new Error(`external idp: ${url} answered ${res.status}`)
  return res.json()
}

/** Starts the provider as a child process; resolves once it listens. */
export async function startExternalIdp(): Promise<ExternalIdp> {
  const secret = randomBytes(18).toString('base64url')
  const child: ChildProcess = spawn(
    process.execPath,
    ['--conditions=keygate-source', '--import', 'tsx', new URL(import.meta.url).pathname],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, EXTERNAL_IDP_CLIENT_SECRET: secret },
    },
  )
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const url = await new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const match = /listening on (\S+)/.exec(out)
      if (match) resolve(match[1]!)
    })
    child.once('exit', (code) => reject(new Error(`external idp exited (${code}) before listening`)))
  })
  return {
    url,
    jwksUri: `${url}/.well-known/jwks.json`,
    introspectionEndpoint: `${url}/introspect`,
    introspectionClient: { id: EXTERNAL_IDP_CLIENT_ID, secret },
    async token(sub, email, shape = 'access_token') {
      return ((await post(`${url}/token`, { sub, email, shape })) as { access_token: string }).access_token
    },
    async revoke(token) {
      await post(`${url}/revoke`, { token })
    },
    async introspectionMode(mode) {
      await post(`${url}/introspection-mode`, { mode })
    },
    async introspections() {
      const res = await fetch(`${url}/stats`)
      return ((await res.json()) as { introspections: number }).introspections
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      await exited
    },
  }
}

if (process.argv[1] === new URL(import.meta.url).pathname) await main()
