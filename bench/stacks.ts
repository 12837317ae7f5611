/**
 * The benchmarked stacks, each started as its own process: the upstream, the bare reply-from proxy, keygate's
 * gateway (the real `keygate start gateway`, with its default logging and a real route file), and the
 * Express stack. Every proxy forwards to the same upstream and trusts the same bench issuer.
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BENCH_AUDIENCE, BENCH_ISSUER, trustedIssuersSetting } from './bench-issuer.js'
import { type ServerProcess, startServer } from './processes.js'

/** The authenticated path every proxy is loaded on (its route in the gateway requires a token). */
export const SECURE_PATH = '/api/bench/items'
/** The gateway's route without authentication (`auth: none`), on the same upstream, and a path under it. */
const OPEN_PREFIX = '/open'
export const OPEN_PATH = `${OPEN_PREFIX}/items`
/** Routes in scenario (d)'s table; the loaded one sits in the middle of it. */
export const MANY_ROUTES = 1000
/** No limit in practice, but the gateway still counts every request against it, as it does in production. */
const UNREACHABLE_RATE_LIMIT = '1000000000/1m'

export interface GatewayOptions {
  upstreamUrl: string
  jwksUri: string
  cpu: number | undefined
  /** Route table size: a few routes, or MANY_ROUTES. */
  routes: 'few' | 'many'
  /**
   * What the authenticated route forwards: keygate's default (a signed assertion, not the token), or
   * the token relayed alone, as the other stacks do.
   */
  forward?: 'default' | 'token only'
  workers?: number
  /**
   * A profile service behind `/api/profile` (rewritten to `/`), and the port the gateway listens on (the
   * profile verifies the gateway's assertions, so it is told the gateway's address before the gateway starts).
   */
  profile?: { url: string; gatewayPort: number }
  /** Write a V8 CPU profile of the gateway (its main process) into this directory on exit. */
  cpuProfileDir?: string
}

export function startUpstream(cpu: number | undefined): Promise<ServerProcess> {
  return startServer({ name: 'upstream', script: 'bench/servers/upstream.ts', cpu })
}

/** A proxy of the bench's own (bench/servers/NAME.ts) in front of `upstreamUrl`, no authentication. */
function startPlainProxy(name: string, upstreamUrl: string, cpu: number | undefined): Promise<ServerProcess> {
  return startServer({ name, script: `bench/servers/${name}.ts`, env: { UPSTREAM_URL: upstreamUrl }, cpu })
}

export const startReplyFrom = (upstreamUrl: string, cpu: number | undefined) =>
  startPlainProxy('reply-from', upstreamUrl, cpu)

export const startRawProxy = (upstreamUrl: string, cpu: number | undefined) =>
  startPlainProxy('raw-proxy', upstreamUrl, cpu)

export function startExpressStack(
  upstreamUrl: string,
  jwksUri: string,
  cpu: number | undefined,
): Promise<ServerProcess> {
  return startServer({
    name: 'express',
    script: 'bench/servers/express-stack.ts',
    env: {
      UPSTREAM_URL: upstreamUrl,
      JWKS_URI: jwksUri,
      TOKEN_ISSUER: BENCH_ISSUER,
      TOKEN_AUDIENCE: BENCH_AUDIENCE,
    },
    cpu,
  })
}

/** The route file of a bench gateway: `/api/bench` (auth required) among `routes` others. */
export function gatewayRouteFile(
  upstreamUrl: string,
  routes: 'few' | 'many',
  forward: 'default' | 'token only' = 'default',
): unknown {
  const secure = {
    prefix: '/api/bench',
    upstream: 'bench',
    auth: { mode: 'required' },
    ...(forward === 'token only' ? { forward: { token: true, assertion: false } } : {}),
  }
  const open = {
    prefix: OPEN_PREFIX,
    upstream: 'bench',
    auth: { mode: 'none' },
  }
  // As keygate's default table has it; its upstream is PROFILE_URL (unused unless a profile runs).
  const profileRoute = {
    prefix: '/api/profile',
    upstream: 'profile',
    rewrite: '/',
    auth: { mode: 'required' },
  }
  if (routes === 'few') return { upstreams: { bench: upstreamUrl }, routes: [secure, open, profileRoute] }
  const filler = (i: number) => ({
    prefix: `/api/service-${String(i).padStart(4, '0')}/v1`,
    upstream: 'bench',
    auth: { mode: 'required' },
  })
  const half = MANY_ROUTES / 2
  return {
    upstreams: { bench: upstreamUrl },
    routes: [
      ...Array.from({ length: half - 1 }, (_, i) => filler(i)),
      secure,
      ...Array.from({ length: MANY_ROUTES - half - 1 }, (_, i) => filler(half + i)),
      open,
    ],
  }
}

export function startGateway(options: GatewayOptions): Promise<ServerProcess> {
  const work = mkdtempSync(join(tmpdir(), 'kg-bench-gateway-'))
  const routesFile = join(work, 'routes.json')
  writeFileSync(
    routesFile,
    JSON.stringify(gatewayRouteFile(options.upstreamUrl, options.routes, options.forward)),
  )
  return startServer({
    name: 'gateway',
    script: 'bin/keygate.ts',
    args: ['start', 'gateway', ...(options.workers ? ['--workers', String(options.workers)] : [])],
    env: {
      HOST: '127.0.0.1',
      GATEWAY_PORT: String(options.profile?.gatewayPort ?? 0),
      GATEWAY_OPS_PORT: '0',
      ...(options.profile
        ? {
            PROFILE_URL: options.profile.url,
            GATEWAY_URL: `http://127.0.0.1:${options.profile.gatewayPort}`,
          }
        : {}),
      TRUSTED_ISSUERS: trustedIssuersSetting(options.jwksUri),
      GATEWAY_ROUTES_FILE: routesFile,
      GATEWAY_RATE_LIMIT: UNREACHABLE_RATE_LIMIT,
      KEYS_DIR: join(work, 'keys'),
      DATA_DIR: join(work, 'data'),
    },
    cpu: options.cpu,
    ...(options.cpuProfileDir
      ? { nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfileDir}`] }
      : {}),
  })
}

/**
 * keygate's profile service (`keygate start profile`, SQLite, default settings) trusting the bench issuer and
 * the assertions of the gateway that will listen on `gatewayPort`.
 */
export function startProfile(
  jwksUri: string,
  gatewayPort: number,
  cpu: number | undefined,
  cpuProfileDir?: string,
): Promise<ServerProcess> {
  const work = mkdtempSync(join(tmpdir(), 'kg-bench-profile-'))
  return startServer({
    name: 'profile',
    script: 'bin/keygate.ts',
    args: ['start', 'profile'],
    env: {
      HOST: '127.0.0.1',
      PROFILE_PORT: '0',
      PROFILE_OPS_PORT: '0',
      TRUSTED_ISSUERS: trustedIssuersSetting(jwksUri),
      GATEWAY_URL: `http://127.0.0.1:${gatewayPort}`,
      KEYS_DIR: join(work, 'keys'),
      DATA_DIR: join(work, 'data'),
    },
    cpu,
    ...(cpuProfileDir ? { nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${cpuProfileDir}`] } : {}),
  })
}
