/**
 * Shared setup for the issuer's tests: temp directories, a fake clock, captured logs, an issuer instance
 * torn down with the test, and small helpers for the browser flows (login, refresh, cookies).
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import type { Test } from 'tap'
import { Agent } from 'undici'
import { buildIssuer } from '../../../services/issuer/app.js'
import { type IssuerConfig, loadIssuerConfig } from '../../../services/issuer/config.js'
import { captureLogs } from '../../helpers/logs.js'
import type { KeySchedule } from '../../../services/issuer/keys/lifecycle.js'

/** A clock tests move by hand. Starts at the real time, so tokens also make sense to outside libraries. */
export class FakeClock {
  #now: number

  constructor(start = Date.now()) {
    this.#now = start
  }

  readonly now = (): number => this.#now

  advance(ms: number): number {
    this.#now += ms
    return this.#now
  }
}

/** A temp directory removed at teardown. */
export function tempDir(t: Test, prefix = 'kg-issuer-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

export interface IssuerFixture {
  app: FastifyInstance
  config: IssuerConfig
  clock: FakeClock
  logs: ReturnType<typeof captureLogs>
  dir: string
}

export interface IssuerFixtureOptions {
  env?: Record<string, string>
  clock?: FakeClock
  /** Reuse a directory (keys and SQLite) instead of a fresh one. */
  dir?: string
}

/** Settings that keep tests fast and deterministic. */
/** A key schedule for tests that build a KeySet directly: hour-long phases, nothing due during a test. */
export const TEST_KEY_SCHEDULE: KeySchedule = {
  keyPublishLeadMs: 3_600_000,
  keyRotationIntervalMs: 2 * 3_600_000,
  retiredKeyKeepMs: 3_600_000,
  revokedKeyKeepMs: 3_600_000,
  rsaBits: 2048,
}

export const TEST_ENV = { LOG_LEVEL: 'debug', ISSUER_URL: 'http://issuer.test' }

/** Seals the key set of issuers on PostgreSQL in tests (KEY_ENCRYPTION_KEY): any 32 random bytes. */
export const TEST_KEY_ENCRYPTION_KEY = randomBytes(32).toString('base64')

/** What an issuer needs to run on a PostgreSQL database (`url` from test/helpers/postgres.ts). */
export function postgresEnv(url: string): Record<string, string> {
  return { DATABASE_URL: url, KEY_ENCRYPTION_KEY: TEST_KEY_ENCRYPTION_KEY }
}

/** Builds a ready issuer in a fresh directory, with captured logs and a fake clock; closed at teardown. */
export async function issuerFixture(t: Test, options: IssuerFixtureOptions = {}): Promise<IssuerFixture> {
  const dir = options.dir ?? tempDir(t)
  const config = loadIssuerConfig({
    ...TEST_ENV,
    KEYS_DIR: join(dir, 'keys'),
    DATA_DIR: join(dir, 'data'),
    ...options.env,
  })
  const clock = options.clock ?? new FakeClock()
  const logs = captureLogs('issuer')
  const app = buildIssuer({
    config,
    logger: logs.logger,
    now: clock.now,
  })
  t.teardown(() => app.close())
  await app.ready()
  return { app, config, clock, logs, dir }
}

/**
 * An HTTP client of a test's own, destroyed at teardown. Register it after the server it talks to, so it
 * goes first: undici may open a spare connection that never carries a request, and a closing server
 * waits on such a connection for a minute.
 */
export function httpClient(t: Test): Agent {
  const agent = new Agent()
  t.teardown(() => agent.destroy())
  return agent
}

/** Listens on a free loopback port (closed with the app at teardown); returns the base URL. */
export async function listening(app: FastifyInstance): Promise<string> {
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address() as AddressInfo
  return `http://127.0.0.1:${address.port}`
}

export const PASSWORD = 'correct horse battery'

/**
 * Registers an account; returns its id. Registration answers the same for a new and a taken e-mail
 * (202 without an id), so the id comes from the store.
 */
export async function register(app: FastifyInstance, email: string, password = PASSWORD): Promise<string> {
  const res = await app.inject({ method: 'POST', url: '/auth/register', payload: { email, password } })
  if (res.statusCode !== 202) throw new Error(`register failed: ${res.statusCode} ${res.body}`)
  const user = await app.issuer.store.findUserByEmail(res.json().email)
  if (!user) throw new Error(`register: no account for ${email}`)
  return user.id
}

/** What a browser holds after login or refresh. */
export interface BrowserSession {
  accessToken: string
  refreshToken: string
  csrfToken: string
  response: LightMyRequestResponse
}

/** The value of a cookie set by a response. */
export function cookie(res: LightMyRequestResponse, name: string) {
  return res.cookies.find((c) => c.name === name)
}

function session(res: LightMyRequestResponse): BrowserSession {
  if (res.statusCode !== 200) throw new Error(`expected tokens, got ${res.statusCode} ${res.body}`)
  const body = res.json()
  return {
    accessToken: body.access_token,
    refreshToken: cookie(res, 'kg_refresh')!.value,
    csrfToken: body.csrf_token,
    response: res,
  }
}

/** Logs in and returns the browser's session. */
export async function login(
  app: FastifyInstance,
  email: string,
  password = PASSWORD,
): Promise<BrowserSession> {
  return session(await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password } }))
}

/** Sends a refresh the way the browser client does. */
export function refreshRequest(
  app: FastifyInstance,
  refreshToken: string | undefined,
  csrfToken: string | undefined,
  headers: Record<string, string> = {},
) {
  return app.inject({
    method: 'POST',
    url: '/auth/refresh',
    headers: { ...(csrfToken ? { 'x-csrf-token': csrfToken } : {}), ...headers },
    ...(refreshToken ? { cookies: { kg_refresh: refreshToken } } : {}),
  })
}

/** Refreshes and returns the new browser session (throws unless 200). */
export async function refresh(app: FastifyInstance, s: BrowserSession): Promise<BrowserSession> {
  return session(await refreshRequest(app, s.refreshToken, s.csrfToken))
}

/** A Bearer header. */
export const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

/** The claims of a JWT, unverified (tests inspect what was signed). */
export function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString())
}

export function headerOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString())
}

/** Asserts that none of `secrets` appears in any captured log line. */
export function assertNoSecretsLogged(
  t: Test,
  logs: ReturnType<typeof captureLogs>,
  secrets: string[],
): void {
  t.ok(logs.lines.length > 0, 'something was logged')
  for (const secret of secrets) {
    t.same(logs.find(secret), [], `secret ${secret.slice(0, 6)}… never logged`)
  }
}
