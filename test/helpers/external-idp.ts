/**
 * A stand-in for a hosted identity provider (Clerk, Auth0…) as a process of its own, with its own RSA key:
 * `node --conditions=keygate-source --import tsx test/helpers/external-idp.ts` listens on a free loopback port, prints
 * `external idp listening on <url>`, publishes its JWKS and mints RFC 9068 access tokens for keygate
 * (`POST /token {sub, email}` → `{access_token}`, `email_verified: true`). Start it with `startExternalIdp`.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT } from 'jose'

/** The audience the provider's tokens for keygate carry. */
export const EXTERNAL_IDP_AUDIENCE = 'keygate'

async function main(): Promise<void> {
  const { privateKey, publicKey } = await generateKeyPair('RS256')
  const jwk = await exportJWK(publicKey)
  const kid = await calculateJwkThumbprint(jwk)
  const app = Fastify({ logger: false, forceCloseConnections: true })
  let url = ''
  app.get('/.well-known/jwks.json', async () => ({ keys: [{ ...jwk, kid, alg: 'RS256', use: 'sig' }] }))
  app.post<{ Body: { sub: string; email: string } }>('/token', async (request) => {
    const now = Math.floor(Date.now() / 1000)
    const token = await new SignJWT({
      client_id: 'frontdoor-web',
      email: request.body.email,
      email_verified: true,
    })
      .setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid })
      .setIssuer(url)
      .setSubject(request.body.sub)
      .setAudience(EXTERNAL_IDP_AUDIENCE)
      .setIssuedAt(now)
      .setExpirationTime(now + 300)
      .setJti(randomUUID())
      .sign(privateKey)
    return { access_token: token }
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  process.stdout.write(`external idp listening on ${url}\n`)
  process.once('SIGTERM', () => void app.close().then(() => process.exit(0)))
}

export interface ExternalIdp {
  url: string
  jwksUri: string
  /** A token for `sub` with a verified `email`. */
  token(sub: string, email: string): Promise<string>
  /** Stops the process (the provider's outage). */
  stop(): Promise<void>
}

/** Starts the provider as a child process; resolves once it listens. */
export async function startExternalIdp(): Promise<ExternalIdp> {
  const child: ChildProcess = spawn(
    process.execPath,
    ['--conditions=keygate-source', '--import', 'tsx', new URL(import.meta.url).pathname],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
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
    async token(sub, email) {
      const res = await fetch(`${url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ sub, email }),
      })
      return ((await res.json()) as { access_token: string }).access_token
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      await exited
    },
  }
}

if (process.argv[1] === new URL(import.meta.url).pathname) await main()
