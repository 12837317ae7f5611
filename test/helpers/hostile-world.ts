/**
 * Every entry point a token can be presented at, in one process, over real HTTP on 127.0.0.1: the gateway
 * (built-in route table plus echo routes of each auth mode), and profile, orders and files reached directly.
 * They trust a stand-in issuer whose private key the tests hold (so they can sign tokens that are valid in
 * every respect but one), and each component's logs are captured for the secret-leak check.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { AssertionSigner } from '../../gateway/assertion-signer.js'
import { buildGateway } from '../../gateway/app.js'
import { assertionKeyFile, loadGatewayConfig } from '../../gateway/config.js'
import { defaultRouteFile, type RouteFile } from '../../gateway/route-file.js'
import type { Identity } from '../../lib/auth/types.js'
import { buildFiles } from '../../services/files/app.js'
import { loadFilesConfig } from '../../services/files/config.js'
import { buildOrders } from '../../services/orders/app.js'
import { loadOrdersConfig } from '../../services/orders/config.js'
import { buildProfile } from '../../services/profile/app.js'
import { loadProfileConfig } from '../../services/profile/config.js'
import { type Attacker, startAttacker } from './attacker.js'
import { captureLogs } from './logs.js'
import { freePort } from './system.js'
import { startTokenIssuer, type TokenIssuer } from './token-issuer.js'
import { type EchoUpstream, startEchoUpstream } from '../gateway/helpers/servers.js'

/** One place a bearer token is checked: a component and a route of it that requires identity. */
export interface EntryPoint {
  name: 'gateway' | 'profile' | 'orders' | 'files' | 'issuer'
  url: string
  /** A GET route that requires a valid access token and answers 200 with one. */
  path: string
  app: FastifyInstance
}

export interface HostileWorld {
  issuer: TokenIssuer
  attacker: Attacker
  /** Answers every request with what it received (the gateway's `/echo*` routes lead there). */
  echo: EchoUpstream
  gateway: EntryPoint
  services: Record<'profile' | 'orders' | 'files', EntryPoint>
  /** The gateway first, then the services reached directly. */
  entryPoints: EntryPoint[]
  /** Captured log lines per component. */
  logs: Record<Exclude<EntryPoint['name'], 'issuer'>, ReturnType<typeof captureLogs>>
  /** Signs assertions with the gateway's own key (what the gateway attaches for `audience`). */
  assertionFor(identity: Identity, audience: string): string
  /** The gateway's assertion key pair, read from its key file (to sign what only the gateway could). */
  gatewayKey: { issuer: string; kid: string; privateKey: KeyObject; publicKey: KeyObject }
  /** A valid access token of the stand-in issuer. */
  token(claims?: Record<string, unknown>): Promise<string>
}

/**
 * Routes added to the built-in table: an echo upstream behind each auth mode, forwarding everything (the raw
 * token too, which routes only do when they opt in: the relay path is part of what is attacked here).
 */
export const ECHO_ROUTES: RouteFile['routes'] = [
  {
    prefix: '/echo/required',
    upstream: 'echo',
    auth: { mode: 'required' },
    forward: { token: true, subject: true, roles: true, scopes: true, claims: ['sid', 'client_id'] },
  },
  {
    prefix: '/echo/optional',
    upstream: 'echo',
    auth: { mode: 'optional' },
    forward: { token: true, subject: true, roles: true, scopes: true, claims: ['sid'] },
  },
  { prefix: '/echo/none', upstream: 'echo', auth: { mode: 'none' } },
]

export interface HostileWorldOptions {
  /** Settings for every component beside the defaults (JWKS timings, rate limits…). */
  env?: Record<string, string>
}

/**
 * Starts the world; everything is closed when `t` ends.
 * @example
 * const world = await startHostileWorld(t)
 * const r = await rawRequest(world.gateway.url, { target: world.gateway.path, headers: [['authorization', `Bearer ${await world.token()}`]] })
 */
export async function startHostileWorld(t: Test, options: HostileWorldOptions = {}): Promise<HostileWorld> {
  const issuer = await startTokenIssuer()
  t.teardown(() => issuer.close())
  const attacker = await startAttacker()
  t.teardown(() => attacker.close())
  const echo = await startEchoUpstream(t)
  const dir = mkdtempSync(join(tmpdir(), 'kg-hostile-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))

  const ports = { gateway: 0, profile: 0, orders: 0, files: 0 }
  for (const name of Object.keys(ports) as Array<keyof typeof ports>) ports[name] = await freePort()
  const url = (port: number) => `http://127.0.0.1:${port}`
  const env: Record<string, string> = {
    ISSUER_URL: issuer.url,
    GATEWAY_URL: url(ports.gateway),
    PROFILE_URL: url(ports.profile),
    ORDERS_URL: url(ports.orders),
    FILES_URL: url(ports.files),
    DATA_DIR: dir,
    KEYS_DIR: join(dir, 'keys'),
    REVOCATION_FEED: 'off',
    LOG_LEVEL: 'debug',
    // The corpus sends thousands of requests from one address: the gateway's rate limit is not under test.
    GATEWAY_RATE_LIMIT: '1000000/1m',
    ...options.env,
  }
  const logs = {
    gateway: captureLogs('gateway'),
    profile: captureLogs('profile'),
    orders: captureLogs('orders'),
    files: captureLogs('files'),
  }

  const gatewayConfig = loadGatewayConfig(env)
  const routes: RouteFile = {
    upstreams: { echo: echo.url },
    // This world's issuer has no token endpoint, so orders has no client to exchange with: it relays the
    // caller's token (the documented fallback), which the route must then opt into.
    routes: [
      ...defaultRouteFile().routes.map((route) =>
        route.prefix === '/api/orders' ? { ...route, forward: { token: true } } : route,
      ),
      ...ECHO_ROUTES,
    ],
  }
  const gatewayApp = await buildGateway({ config: gatewayConfig, logger: logs.gateway.logger, routes })
  const apps: FastifyInstance[] = [gatewayApp]
  t.teardown(async () => {
    for (const app of apps.reverse()) await app.close()
  })
  await gatewayApp.listen({ host: '127.0.0.1', port: ports.gateway })

  const profile = buildProfile({ config: loadProfileConfig(env), logger: logs.profile.logger })
  const orders = buildOrders({ config: loadOrdersConfig(env), logger: logs.orders.logger })
  const files = buildFiles({ config: loadFilesConfig(env), logger: logs.files.logger })
  apps.push(profile, orders, files)
  await profile.listen({ host: '127.0.0.1', port: ports.profile })
  await orders.listen({ host: '127.0.0.1', port: ports.orders })
  await files.listen({ host: '127.0.0.1', port: ports.files })
  await Promise.all(apps.map((app) => app.auth.ready()))

  const keyFile = assertionKeyFile(gatewayConfig)
  const signer = await AssertionSigner.open({ keyFile, issuer: env.GATEWAY_URL! })
  const privateKey = createPrivateKey({ key: JSON.parse(readFileSync(keyFile, 'utf8')), format: 'jwk' })
  const entry = (name: EntryPoint['name'], app: FastifyInstance, path: string): EntryPoint => ({
    name,
    url: url((app.server.address() as AddressInfo).port),
    path,
    app,
  })
  const services = {
    profile: entry('profile', profile, '/me'),
    orders: entry('orders', orders, '/orders'),
    files: entry('files', files, '/files'),
  }
  const gateway = entry('gateway', gatewayApp, '/api/profile/me')
  return {
    issuer,
    attacker,
    echo,
    gateway,
    services,
    entryPoints: [gateway, services.profile, services.orders, services.files],
    logs,
    assertionFor: (identity, audience) => signer.assertionFor(identity, audience),
    gatewayKey: {
      issuer: env.GATEWAY_URL!,
      kid: signer.kid,
      privateKey,
      publicKey: createPublicKey(privateKey),
    },
    token: (claims = {}) => issuer.mint(claims),
  }
}
