/**
 * Upstreams failing behind the gateway: down (502 KG_UPSTREAM_UNAVAILABLE), resetting connections (502),
 * hanging (504 KG_UPSTREAM_TIMEOUT at the route's timeout) and stalling mid-body, while other routes keep
 * answering at once; every status an upstream gives, to bodiless and to streamed requests, passes through
 * without hurting the gateway; and it all recovers when the upstream does.
 */
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { buildGateway } from '../../gateway/app.js'
import { loadGatewayConfig } from '../../gateway/config.js'
import { startEchoUpstream } from '../gateway/helpers/servers.js'
import { startFaultProxy } from '../helpers/fault-proxy.js'
import { captureLogs } from '../helpers/logs.js'
import { rawRequest } from '../helpers/raw-http.js'
import { SecretLedger } from '../helpers/secret-ledger.js'
import { startTokenIssuer } from '../helpers/token-issuer.js'

/** The flaky route's timeout: long enough that the steady route's answers clearly come first. */
const FLAKY_TIMEOUT_MS = 2_000
const HANGING = 20

t.test('a failing upstream costs its own route only, with 502/504, and recovers', async (t) => {
  const crashes: unknown[] = []
  const onCrash = (err: unknown) => crashes.push(err)
  process.on('uncaughtException', onCrash)
  process.on('unhandledRejection', onCrash)
  t.teardown(() => {
    process.off('uncaughtException', onCrash)
    process.off('unhandledRejection', onCrash)
  })
  const issuer = await startTokenIssuer()
  t.teardown(() => issuer.close())
  const flaky = await startEchoUpstream(t)
  const steady = await startEchoUpstream(t)
  const proxy = await startFaultProxy(flaky.url)
  t.teardown(() => proxy.close())
  const logs = captureLogs('gateway')
  const config = loadGatewayConfig({
    KEYS_DIR: t.testdir(),
    LOG_LEVEL: 'silent',
    ISSUER_URL: issuer.url,
    GATEWAY_RATE_LIMIT: '100000/1m',
  })
  const app = await buildGateway({
    config,
    // Logging on: writing the log line of a refused or failed request is part of what must not break.
    logger: logs.logger,
    routes: {
      upstreams: { flaky: proxy.url, steady: steady.url },
      routes: [
        { prefix: '/flaky', upstream: 'flaky', auth: { mode: 'none' }, timeoutMs: FLAKY_TIMEOUT_MS },
        { prefix: '/steady', upstream: 'steady', auth: { mode: 'none' } },
        { prefix: '/private', upstream: 'steady', auth: { mode: 'required' } },
      ],
    },
  })
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port: 0 })
  await app.auth.ready()
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const token = await issuer.mint()
  const get = async (target: string) => {
    const r = await rawRequest(url, {
      target,
      headers: target.startsWith('/private') ? [['authorization', `Bearer ${token}`]] : [],
      timeoutMs: 30_000,
    })
    return { status: r.status, code: r.json?.code as string | undefined, at: performance.now() }
  }
  const statuses = (list: Array<{ status: number; code?: string | undefined }>) => [
    ...new Set(list.map((r) => `${r.status}${r.code ? ` ${r.code}` : ''}`)),
  ]

  t.equal((await get('/flaky/x')).status, 200, 'the flaky upstream answers while it is up')

  await proxy.set('refuse')
  let answers = await Promise.all(Array.from({ length: 10 }, () => get('/flaky/x')))
  t.strictSame(statuses(answers), ['502 KG_UPSTREAM_UNAVAILABLE'], 'down: 502')
  await proxy.set('reset')
  answers = await Promise.all(Array.from({ length: 10 }, () => get('/flaky/x')))
  t.strictSame(statuses(answers), ['502 KG_UPSTREAM_UNAVAILABLE'], 'connections reset: 502')

  await proxy.set('hang')
  const started = performance.now()
  const hanging = Array.from({ length: HANGING }, () => get('/flaky/x'))
  const others = await Promise.all(
    Array.from({ length: 40 }, (_, i) => get(i % 2 ? '/steady/x' : '/private/x')),
  )
  const hung = await Promise.all(hanging)
  t.strictSame(statuses(hung), ['504 KG_UPSTREAM_TIMEOUT'], `hanging: ${HANGING} requests answered 504`)
  t.strictSame(statuses(others), ['200'], 'other routes, public and authenticated, kept answering')
  const lastOther = Math.max(...others.map((r) => r.at))
  const firstTimeout = Math.min(...hung.map((r) => r.at))
  t.ok(lastOther < firstTimeout, 'every other answer came before the hanging requests timed out')
  t.comment(
    `upstream hanging: ${HANGING} requests 504 after ${Math.round(firstTimeout - started)} ms (timeout ${FLAKY_TIMEOUT_MS} ms); 40 requests to other routes done within ${Math.round(lastOther - started)} ms`,
  )

  // An upstream that sends its head and then stalls: the answer was already under way, so it is cut off.
  await proxy.set('pass')
  flaky.handle = (_request, reply) => {
    reply.raw.writeHead(200, { 'content-type': 'text/plain' })
    reply.raw.write('partial')
    return reply.hijack()
  }
  const stalled = await rawRequest(url, { target: '/flaky/stall', timeoutMs: 15_000 })
  t.notOk(
    stalled.timedOut,
    `a body that stalls is cut off at the route's timeout (${Math.round(stalled.elapsedMs)} ms)`,
  )
  t.equal((await get('/steady/x')).status, 200, 'and the gateway carries on')

  // Every status an upstream may answer, to a bodiless and to a streamed request, passes through unharmed.
  const codes = [200, 201, 204, 301, 400, 401, 403, 404, 409, 413, 429, 500, 502, 503]
  flaky.handle = async (request, reply) => {
    for await (const _chunk of request.raw) void _chunk
    const code = Number(request.headers['x-status'])
    return reply
      .code(code)
      .header('location', '/x')
      .send(code === 204 ? undefined : { code })
  }
  const passed: string[] = []
  for (const code of codes) {
    for (const method of ['GET', 'POST']) {
      const r = await rawRequest(url, {
        method,
        target: '/flaky/status',
        headers: [
          ['x-status', String(code)],
          ['content-type', 'application/json'],
        ],
        ...(method === 'POST' ? { body: JSON.stringify({ pad: 'x'.repeat(2048) }) } : {}),
      })
      if (r.status !== code) passed.push(`${method} ${code} → ${r.status}`)
    }
  }
  t.strictSame(
    passed,
    [],
    `${codes.length} upstream statuses passed through for GET and for POST with a body`,
  )

  flaky.handle = undefined
  t.equal((await get('/flaky/x')).status, 200, 'recovered once the upstream answers again')
  t.equal((await get('/healthz')).status, 200, 'the gateway is healthy')
  t.strictSame(crashes, [], 'no uncaught exception or unhandled rejection in the gateway')
  const ledger = new SecretLedger()
  ledger.add('access token', token)
  t.strictSame(ledger.leaksIn('gateway', logs.lines), [], `no token in ${logs.lines.length} log lines`)
})
