/**
 * Servers for gateway tests: echo upstreams (real Fastify servers on port 0 that answer with what they
 * received) and a gateway built on them, listening on port 0, torn down with the test. `startEchoGateway`
 * is the set-up most tests share: a token issuer, an echo upstream and a gateway routing to it.
 */
import { createHash } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify'
import type { Test } from 'tap'
import { buildGateway } from '../../../gateway/app.js'
import { type GatewayConfig, loadGatewayConfig } from '../../../gateway/config.js'
import type { RouteFile } from '../../../gateway/route-file.js'
import { createLogger } from '../../../lib/server.js'
import { startTokenIssuer, type TokenIssuer } from '../../helpers/token-issuer.js'

/** What an echo upstream answers by default: the request as it arrived. */
export interface Echo {
  method: string
  url: string
  headers: Record<string, string | string[] | undefined>
  bodyLength: number
  bodySha256: string
}

export interface EchoUpstream {
  url: string
  app: FastifyInstance
  /** Requests received so far. */
  requests: number
  /** Replaces the handler of every request (`undefined` restores the echo). */
  handle: ((request: FastifyRequest, reply: FastifyReply) => unknown) | undefined
}

/** An upstream that answers every request with a JSON `Echo`; `/stream-back` streams the body back instead. */
export async function startEchoUpstream(t: Test): Promise<EchoUpstream> {
  const app = Fastify({ logger: false, forceCloseConnections: true })
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, _payload, done) => done(null))
  const state: EchoUpstream = { url: '', app, requests: 0, handle: undefined }
  app.all('/*', async (request, reply) => {
    state.requests++
    if (state.handle) return state.handle(request, reply)
    if (request.url.startsWith('/stream-back')) {
      return reply.header('content-type', 'application/octet-stream').send(request.raw)
    }
    const hash = createHash('sha256')
    let bodyLength = 0
    for await (const chunk of request.raw as AsyncIterable<Buffer>) {
      hash.update(chunk)
      bodyLength += chunk.length
    }
    const echo: Echo = {
      method: request.method,
      url: request.url,
      headers: request.headers,
      bodyLength,
      bodySha256: hash.digest('hex'),
    }
    return echo
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  state.url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  t.teardown(() => app.close())
  return state
}

/** A stand-in issuer of access tokens, closed with the test. */
export async function startIssuer(t: Test): Promise<TokenIssuer> {
  const issuer = await startTokenIssuer()
  t.teardown(() => issuer.close())
  return issuer
}

export interface TestGateway {
  app: FastifyInstance
  url: string
  config: GatewayConfig
}

export interface TestGatewayOptions {
  routes?: RouteFile
  /** Settings beside the test defaults. */
  env?: Record<string, string>
  issuer: TokenIssuer
  now?: () => number
  /** Default: a silent logger. */
  logger?: FastifyBaseLogger
  /** Build only (for inject); default listens on port 0. */
  listen?: boolean
}

/** A gateway trusting `issuer`, its assertion key in a fresh directory, listening on port 0. */
export async function startGateway(t: Test, options: TestGatewayOptions): Promise<TestGateway> {
  const config = loadGatewayConfig({
    LOG_LEVEL: 'silent',
    KEYS_DIR: t.testdir(),
    // The stand-in is keygate's own issuer here (its users' ids plain, every role granted); it has no feed.
    ISSUER_URL: options.issuer.url,
    REVOCATION_FEED: 'off',
    TRUSTED_ISSUERS: JSON.stringify([{ issuer: options.issuer.url, audiences: [options.issuer.audience] }]),
    ...options.env,
  })
  const app = await buildGateway({
    config,
    logger: options.logger ?? createLogger({ name: 'gateway', level: 'silent' }),
    ...(options.routes ? { routes: options.routes } : {}),
    ...(options.now ? { now: options.now } : {}),
  })
  t.teardown(() => app.close())
  await app.auth.ready()
  if (options.listen === false) {
    await app.ready()
    return { app, url: '', config }
  }
  await app.listen({ host: '127.0.0.1', port: 0 })
  return { app, url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, config }
}

/** Every path to the echo upstream, auth `none`: the route of tests about proxying rather than policy. */
export const CATCH_ALL: RouteFile['routes'] = [{ prefix: '/', upstream: 'up', auth: { mode: 'none' } }]

export interface EchoGatewayOptions extends Omit<TestGatewayOptions, 'issuer' | 'routes'> {
  /** The gateway's routes. Default `CATCH_ALL`. */
  routes?: RouteFile['routes']
  /** Upstreams by name; every other name the routes use is the echo upstream. */
  upstreams?: Record<string, string>
  /** The issuer to trust; default a fresh one, closed with the test. */
  issuer?: TokenIssuer
}

export interface EchoGateway {
  issuer: TokenIssuer
  upstream: EchoUpstream
  gw: TestGateway
}

/**
 * A token issuer, an echo upstream and a gateway whose routes lead to it, all closed with the test.
 * @example
 * const { issuer, upstream, gw } = await startEchoGateway(t, {
 *   routes: [{ prefix: '/api', upstream: 'up', auth: { mode: 'required' } }],
 * })
 */
export async function startEchoGateway(t: Test, options: EchoGatewayOptions = {}): Promise<EchoGateway> {
  const { routes = CATCH_ALL, upstreams = {}, issuer: given, ...gateway } = options
  const issuer = given ?? (await startIssuer(t))
  const upstream = await startEchoUpstream(t)
  const names = Object.fromEntries(routes.map((r) => [r.upstream, upstreams[r.upstream] ?? upstream.url]))
  const gw = await startGateway(t, {
    ...gateway,
    issuer,
    routes: { upstreams: { ...upstreams, ...names }, routes },
  })
  return { issuer, upstream, gw }
}
