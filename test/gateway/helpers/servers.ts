/**
 * Servers for gateway tests: echo upstreams (real Fastify servers on port 0 that answer with what they
 * received) and a gateway built on them, listening on port 0, torn down with the test.
 */
import { createHash } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
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
  /** Build only (for inject); default listens on port 0. */
  listen?: boolean
}

/** A gateway trusting `issuer`, its assertion key in a fresh directory, listening on port 0. */
export async function startGateway(t: Test, options: TestGatewayOptions): Promise<TestGateway> {
  const config = loadGatewayConfig({
    LOG_LEVEL: 'silent',
    KEYS_DIR: t.testdir(),
    TRUSTED_ISSUERS: JSON.stringify([{ issuer: options.issuer.url, audiences: [options.issuer.audience] }]),
    ...options.env,
  })
  const app = await buildGateway({
    config,
    logger: createLogger({ name: 'gateway', level: 'silent' }),
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
