/**
 * Shared setup for the downstream services' tests (profile, orders, files): a stand-in issuer and gateway
 * served over HTTP, a temp DATA_DIR, the environment a service is configured from, a clock tests move,
 * and a small HTTP client for calls across a real process boundary.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { decodeJwt, decodeProtectedHeader } from 'jose'
import type { Test } from 'tap'
import { request } from 'undici'
import { type GatewayKeys, startGatewayKeys } from './gateway-keys.js'
import { startTokenIssuer, type TokenIssuer } from './token-issuer.js'

/** A clock tests move by hand; it starts at the real time so tokens minted by libraries make sense. */
export class FakeClock {
  #now = Date.now()
  readonly now = (): number => this.#now
  advance(ms: number): void {
    this.#now += ms
  }
}

/** A temp directory removed at teardown. */
export function tempDir(t: Test, prefix = 'kg-service-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

export interface ServiceWorld {
  issuer: TokenIssuer
  gateway: GatewayKeys
  /** DATA_DIR of the services under test. */
  dir: string
  /** Environment for a service's `loadXConfig(env)`: the stand-ins' URLs, DATA_DIR, no revocation feed. */
  env: Record<string, string>
  /** An access token for `sub` (default `alice`). */
  token(sub?: string, claims?: Record<string, unknown>): Promise<string>
  /** The gateway's assertion vouching for `token`, minted for `audience`. */
  assertionFor(token: string, audience: string): string
}

/**
 * Starts a stand-in issuer and gateway for one test; everything is torn down with it.
 * @example
 * const world = await startServiceWorld(t)
 * const app = buildProfile({ config: loadProfileConfig(world.env) })
 */
export async function startServiceWorld(t: Test): Promise<ServiceWorld> {
  const issuer = await startTokenIssuer()
  t.teardown(() => issuer.close())
  const gateway = await startGatewayKeys(t)
  const dir = tempDir(t)
  return {
    issuer,
    gateway,
    dir,
    env: {
      ISSUER_URL: issuer.url,
      GATEWAY_URL: gateway.url,
      DATA_DIR: dir,
      // The stand-in issuer has no revocation feed; these tests are about identity, not revocation.
      REVOCATION_FEED: 'off',
      LOG_LEVEL: 'debug',
      // A service started with its entry point opens its ops listener on a free port.
      PROFILE_OPS_PORT: '0',
      ORDERS_OPS_PORT: '0',
      FILES_OPS_PORT: '0',
    },
    token: (sub = 'alice', claims = {}) => issuer.mint({ sub, ...claims }),
    assertionFor(token, audience) {
      const claims = decodeJwt(token)
      return gateway.assert({
        aud: audience,
        sub: claims.sub,
        roles: claims.roles,
        scope: claims.scope,
        at_jti: claims.jti,
        at_iat: claims.iat,
        at_iss: claims.iss,
        at_kid: decodeProtectedHeader(token).kid,
      })
    },
  }
}

/** Listens on 127.0.0.1:0 and returns the base URL; the instance is closed at teardown. */
export async function listenOnFreePort(t: Test, app: FastifyInstance): Promise<string> {
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
}

export interface HttpAnswer {
  status: number
  headers: Record<string, string | string[] | undefined>
  /** Parsed JSON when the answer is JSON, else the text. */
  body: any
  bytes: Buffer
}

/** One HTTP request over a real connection. */
export async function httpCall(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<HttpAnswer> {
  const res = await request(url, {
    method: (options.method ?? 'GET') as 'GET',
    headers: options.headers ?? {},
    ...(options.body === undefined ? {} : { body: options.body }),
  })
  const bytes = Buffer.from(await res.body.arrayBuffer())
  const type = String(res.headers['content-type'] ?? '')
  return {
    status: res.statusCode,
    headers: res.headers,
    body: type.includes('json') ? JSON.parse(bytes.toString('utf8')) : bytes.toString('utf8'),
    bytes,
  }
}

/** `Authorization` for a token. */
export const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
