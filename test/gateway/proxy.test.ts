import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { request as httpRequest } from 'node:http'
import { createServer } from 'node:net'
import { Readable } from 'node:stream'
import t from 'tap'
import { request } from 'undici'
import { rawRequest } from '../helpers/raw-http.js'
import { type Echo, startEchoGateway, startEchoUpstream } from './helpers/servers.js'

const MiB = 1024 * 1024

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  server.close()
  await once(server, 'close')
  return port
}

t.test('method, path, query and body reach the upstream', async (t) => {
  const { gw } = await startEchoGateway(t, {
    routes: [{ prefix: '/api/things', upstream: 'up', rewrite: '/things', auth: { mode: 'none' } }],
  })
  for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']) {
    const body = method === 'GET' ? undefined : `{"m":"${method}"}`
    const res = await request(`${gw.url}/api/things/7?x=1&y=%2F`, {
      method,
      body,
      headers: { 'content-type': 'application/json' },
    })
    t.equal(res.statusCode, 200, method)
    const echo = (await res.body.json()) as Echo
    t.equal(echo.method, method)
    t.equal(echo.url, '/things/7?x=1&y=%2F', 'prefix rewritten, query kept as sent')
    t.equal(echo.bodyLength, body?.length ?? 0)
    if (body)
      t.equal(echo.headers['content-type'], 'application/json', 'a body is never parsed, only passed on')
  }
  const head = await request(`${gw.url}/api/things`, { method: 'HEAD' })
  t.equal(head.statusCode, 200)
  t.equal(await head.body.text(), '')

  const spelled = await request(`${gw.url}/api/x/../things/%37`)
  t.equal(((await spelled.body.json()) as Echo).url, '/things/7', 'the normalised path is what is forwarded')

  const missing = await request(`${gw.url}/api/thingsx`)
  t.equal(missing.statusCode, 404)
  t.same(await missing.body.json(), {
    error: 'not_found',
    code: 'KG_ROUTE_NOT_FOUND',
    message: 'No route matches this path',
  })
  // undici would turn the backslash into a slash (WHATWG URL rules); rawRequest sends the path as written.
  const ambiguous = await rawRequest(gw.url, { target: '/api/things\\x' })
  t.equal(ambiguous.status, 400)
  t.match(ambiguous.json, { code: 'KG_INVALID_REQUEST' })
})

t.test('statuses without a body pass through as they are', async (t) => {
  const { upstream, gw } = await startEchoGateway(t)
  for (const status of [204, 304, 404, 500]) {
    upstream.handle = (_request, reply) => reply.code(status).header('etag', '"v1"').send()
    const res = await request(`${gw.url}/s`)
    t.equal(res.statusCode, status, `${status} is the upstream's`)
    t.equal(res.headers.etag, '"v1"')
    t.equal(await res.body.text(), '')
  }
  upstream.handle = (_request, reply) => reply.code(503).send({ error: 'upstream says no', stack: 'at x' })
  const failing = await request(`${gw.url}/s`)
  t.equal(failing.statusCode, 503)
  t.same(
    await failing.body.json(),
    { error: 'upstream says no', stack: 'at x' },
    'an upstream answer is relayed, not rewritten',
  )
})

t.test('multi-megabyte bodies stream through both ways, without buffering', async (t) => {
  const { gw } = await startEchoGateway(t)
  const chunk = randomBytes(64 * 1024)
  const chunks = (4 * MiB) / chunk.length
  const sent = createHash('sha256')
  let echoedFirst: () => void
  const firstEchoed = new Promise<void>((resolve) => (echoedFirst = resolve))
  // The rest is sent only once the first chunk came back: a gateway that buffered either way would deadlock.
  async function* body() {
    sent.update(chunk)
    yield chunk
    await firstEchoed
    for (let i = 1; i < chunks; i++) {
      sent.update(chunk)
      yield chunk
    }
  }
  const res = await request(`${gw.url}/stream-back`, { method: 'POST', body: Readable.from(body()) })
  t.equal(res.statusCode, 200)
  const received = createHash('sha256')
  let length = 0
  for await (const part of res.body) {
    if (length === 0) echoedFirst!()
    length += part.length
    received.update(part)
  }
  t.equal(length, 4 * MiB)
  t.equal(received.digest('hex'), sent.digest('hex'))
})

t.test(
  'an unreachable upstream is a 502, a hanging one a 504, and other routes keep answering',
  async (t) => {
    let release: () => void = () => {}
    const hung = new Promise<void>((resolve) => (release = resolve))
    t.teardown(() => release())
    const slow = await startEchoUpstream(t)
    let arrived: () => void
    const slowArrived = new Promise<void>((resolve) => (arrived = resolve))
    slow.handle = async () => {
      arrived()
      await hung
      return { late: true }
    }
    const { gw } = await startEchoGateway(t, {
      upstreams: { down: `http://127.0.0.1:${await closedPort()}`, slow: slow.url },
      routes: [
        { prefix: '/up', upstream: 'up', auth: { mode: 'none' } },
        { prefix: '/down', upstream: 'down', auth: { mode: 'none' } },
        { prefix: '/slow', upstream: 'slow', auth: { mode: 'none' }, timeoutMs: 1000 },
      ],
    })

    const down = await request(`${gw.url}/down/x`)
    t.equal(down.statusCode, 502)
    const downBody = await down.body.text()
    t.same(JSON.parse(downBody), {
      error: 'bad_gateway',
      code: 'KG_UPSTREAM_UNAVAILABLE',
      message: 'The upstream service is unavailable',
    })
    t.notMatch(downBody, /ECONNREFUSED|127\.0\.0\.1|stack/, 'nothing about the upstream leaks')

    let slowSettled = false
    const slowRes = request(`${gw.url}/slow/x`).finally(() => (slowSettled = true))
    await slowArrived
    const quick = await request(`${gw.url}/up/x`)
    t.equal(quick.statusCode, 200, 'another route answers while one hangs')
    await quick.body.dump()
    t.notOk(slowSettled, 'and answers before the hanging one gives up')
    const timedOut = await slowRes
    t.equal(timedOut.statusCode, 504)
    t.same(await timedOut.body.json(), {
      error: 'gateway_timeout',
      code: 'KG_UPSTREAM_TIMEOUT',
      message: 'The upstream service timed out',
    })

    const metrics = (await gw.app.operations.inject('/metrics')).body
    t.match(metrics, /keygate_gateway_upstream_errors_total\{upstream="down",kind="connect"[^}]*\} 1/)
    t.match(metrics, /keygate_gateway_upstream_errors_total\{upstream="slow",kind="timeout"[^}]*\} 1/)
    t.match(metrics, /keygate_gateway_requests_total\{route="\/up",outcome="proxied"[^}]*\} 1/)
    t.match(
      metrics,
      /keygate_gateway_requests_total\{route="\/down",outcome="KG_UPSTREAM_UNAVAILABLE"[^}]*\} 1/,
    )
  },
)

t.test('a client that hangs up mid-upload is not an upstream failure', async (t) => {
  const { upstream, gw } = await startEchoGateway(t)
  let receiving: () => void
  const uploadStarted = new Promise<void>((resolve) => (receiving = resolve))
  let upstreamSawAbort: () => void
  const aborted = new Promise<void>((resolve) => (upstreamSawAbort = resolve))
  upstream.handle = async (request) => {
    request.raw.once('data', () => receiving())
    request.raw.once('close', () => upstreamSawAbort())
    return new Promise(() => {})
  }
  const url = new URL(`${gw.url}/upload`)
  const client = httpRequest({
    host: url.hostname,
    port: url.port,
    path: url.pathname,
    method: 'POST',
    agent: false,
  })
  client.on('error', () => {})
  // More than GATEWAY_BODY_BUFFER (64 KiB), so the body streams upstream before it is complete (a smaller
  // one would never leave the gateway unfinished: request-body.test.ts).
  client.write(Buffer.alloc(65 * 1024))
  await uploadStarted
  client.destroy()
  await aborted
  const metrics = (await gw.app.operations.inject('/metrics')).body
  t.notMatch(metrics, /keygate_gateway_upstream_errors_total\{upstream="up"/)
})

t.test('bodies over the limit are refused with 413, declared or streamed', async (t) => {
  const { upstream, gw } = await startEchoGateway(t, { env: { GATEWAY_BODY_LIMIT: String(MiB) } })
  const atLimit = await request(`${gw.url}/a`, { method: 'POST', body: Buffer.alloc(MiB) })
  t.equal(((await atLimit.body.json()) as Echo).bodyLength, MiB, 'a body at the limit passes')
  const seen = upstream.requests

  const declared = await request(`${gw.url}/a`, { method: 'POST', body: Buffer.alloc(MiB + 1) })
  t.equal(declared.statusCode, 413)
  t.match(await declared.body.json(), { code: 'KG_PAYLOAD_TOO_LARGE' })
  t.equal(upstream.requests, seen, 'a declared length over the limit never reaches the upstream')

  async function* chunked() {
    for (let i = 0; i < 3; i++) yield Buffer.alloc(MiB / 2)
  }
  const streamed = await request(`${gw.url}/a`, { method: 'POST', body: Readable.from(chunked()) })
  t.equal(streamed.statusCode, 413, 'a chunked body is cut off once past the limit')
  t.match(await streamed.body.json(), { code: 'KG_PAYLOAD_TOO_LARGE' })
})
