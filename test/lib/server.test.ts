import { type AddressInfo, connect, createServer } from 'node:net'
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { registerErrorHandling } from '../../lib/errors.js'
import { OPS_TIMEOUTS, operations } from '../../lib/operations.js'
import { createLogger, listen, registerHttpHygiene, serverOptions } from '../../lib/server.js'
import { captureLogs } from '../helpers/logs.js'
import { rawRequest } from '../helpers/raw-http.js'

function app(level: string, requestLog?: 'all' | 'failures') {
  const lines: Array<Record<string, any>> = []
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l))
      cb()
    },
  })
  const fastify = Fastify(
    serverOptions({
      logger: createLogger({ name: 'test', level, stream }),
      ...(requestLog ? { requestLog } : {}),
    }),
  )
  fastify.get('/ok', async () => ({ ok: true }))
  fastify.get('/refused', async (_request, reply) => reply.code(401).send({ error: 'no' }))
  fastify.get('/broken', async () => {
    throw new Error('boom')
  })
  t.teardown(() => fastify.close())
  return {
    fastify,
    lines,
    messages: () => lines.map((l) => `${l.level} ${l.msg} ${l.res?.statusCode ?? ''}`.trim()),
  }
}

t.test('requestLog all (the default): every request in and out at info', async (t) => {
  const { fastify, messages } = app('info')
  await fastify.inject('/ok')
  t.same(messages(), ['30 incoming request', '30 request completed 200'])
})

t.test('requestLog failures: answers below 400 only at debug, refusals and errors at info', async (t) => {
  const { fastify, lines, messages } = app('info', 'failures')
  await fastify.inject('/ok')
  t.same(messages(), [], 'nothing at info for a request passed on')
  await fastify.inject('/refused?token=secret')
  t.same(messages(), ['30 request completed 401'])
  t.match(lines[0], { req: { method: 'GET', url: '/refused?[redacted]' }, responseTime: Number })
  lines.length = 0
  await fastify.inject('/broken')
  t.ok(
    messages().some((m) => m.startsWith('30 request completed 500') || m.startsWith('50 ')),
    'a failure keeps its line',
  )
})

t.test('requestLog failures at debug: every request still logged', async (t) => {
  const { fastify, messages } = app('debug', 'failures')
  await fastify.inject('/ok')
  t.same(messages(), ['20 incoming request', '20 request completed 200'])
})

t.test(
  'requestLog failures: a request that lost its socket before completing still gets its line',
  async (t) => {
    const { fastify, lines, messages } = app('info', 'failures')
    fastify.get('/gone', async (request, reply) => {
      // What a proxied request looks like once its body was streamed upstream and its connection closed.
      Object.defineProperty(request.raw, 'socket', { value: null, configurable: true })
      return reply.code(401).send({ error: 'no' })
    })
    const res = await fastify.inject('/gone')
    t.equal(res.statusCode, 401)
    t.same(messages(), ['30 request completed 401'])
    t.match(lines[0], { req: { method: 'GET', url: '/gone' } })
  },
)

/** A component's skeleton as every keygate process has it, listening on a free port. */
async function hygienicApp(t: Test, apiAnswers: boolean) {
  const logs = captureLogs()
  const fastify = Fastify(serverOptions({ logger: logs.logger }))
  registerErrorHandling(fastify)
  registerHttpHygiene(fastify, { apiAnswers })
  const handled: string[] = []
  fastify.get('/files/:name', async (request) => {
    handled.push(request.url)
    return { ok: true }
  })
  fastify.post('/echo', async (request) => {
    handled.push(request.url)
    return { body: request.body }
  })
  fastify.get('/cached', async (_request, reply) =>
    reply.header('cache-control', 'public, max-age=60').send({ keys: [] }),
  )
  fastify.get('/jwks', async (_request, reply) => reply.type('application/jwk-set+json').send({ keys: [] }))
  fastify.get('/text', async (_request, reply) => reply.type('text/plain').send('hello'))
  fastify.get('/download', async (_request, reply) =>
    reply.type('application/json').header('cache-control', 'private, max-age=5').send('{"a":1}'),
  )
  await fastify.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => fastify.close())
  return {
    fastify,
    logs,
    handled,
    origin: `http://127.0.0.1:${(fastify.server.address() as AddressInfo).port}`,
  }
}

/** Writes `bytes` on a fresh connection and returns what came back until the server closed it. */
function rawExchange(origin: string, bytes: string): Promise<string> {
  const { hostname, port } = new URL(origin)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname)
    let answer = ''
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')))
    socket.on('error', reject)
    socket.on('close', () => resolve(answer))
    socket.write(bytes)
  })
}

t.test('a malformed URL gets keygate’s JSON error and a request id, never the raw path', async (t) => {
  const { origin, handled, logs } = await hygienicApp(t, true)
  for (const target of ['/%zz', '/%', '/files/%zz', '/files/a%2', '/%E0%A4%A']) {
    const r = await rawRequest(origin, { target })
    t.equal(r.status, 400, target)
    t.same(r.json, {
      error: 'invalid_request',
      code: 'KG_MALFORMED_URL',
      message: 'The request URL is malformed',
    })
    t.match(r.headers['x-request-id'], /^[0-9a-f-]{36}$/, 'a request id')
    t.equal(r.headers['cache-control'], 'no-store')
    t.equal(r.headers['x-content-type-options'], 'nosniff')
    t.notOk(r.body.includes('%'), 'the body does not echo the path')
  }
  const r = await rawRequest(origin, { target: '/%zz', headers: [['x-request-id', 'trace-42']] })
  t.equal(r.headers['x-request-id'], 'trace-42', "the client's own request id, as for any request")
  t.ok(
    logs.lines.some((l) => l.includes('"code":"KG_MALFORMED_URL"') && l.includes('trace-42')),
    'logged by code with the request id',
  )
  const long = await rawRequest(origin, { target: `/files/${'x'.repeat(2049)}` })
  t.equal(long.status, 414, 'a parameter past maxParamLength')
  t.match(long.json, { code: 'KG_URL_TOO_LONG' })
  t.match(long.headers['x-request-id'], /./)
  t.notOk(long.body.includes('xxxx'))
  t.same(handled, [], 'no handler ran')
})

t.test('two Host headers are 400 KG_HOST_INVALID (RFC 9112 §3.2); the connection is closed', async (t) => {
  const { origin, handled } = await hygienicApp(t, true)
  for (const second of ['evil.example', '127.0.0.1']) {
    for (const name of ['host', 'Host', 'HOST']) {
      const r = await rawRequest(origin, { target: '/files/a', headers: [[name, second]] })
      t.equal(r.status, 400, `${name}: ${second}`)
      t.same(r.json, {
        error: 'invalid_request',
        code: 'KG_HOST_INVALID',
        message: 'The request must carry exactly one Host header',
      })
      t.equal(r.headers.connection, 'close')
      t.match(r.headers['x-request-id'], /./)
    }
  }
  t.same(handled, [], 'no handler ran')
  t.equal((await rawRequest(origin, { target: '/files/a' })).status, 200, 'one Host header is fine')
  t.same(handled, ['/files/a'])
})

t.test(
  'a transfer coding other than plain chunked is 501 (RFC 9112 §6.1), before the body is read',
  async (t) => {
    const { origin, handled } = await hygienicApp(t, true)
    const post = (codings: string) =>
      rawExchange(
        origin,
        `POST /echo HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: ${codings}\r\n` +
          'connection: close\r\n\r\n7\r\n{"a":1}\r\n0\r\n\r\n',
      )
    for (const codings of ['gzip, chunked', 'deflate, chunked', 'GZIP,chunked', 'gzip', 'identity']) {
      const answer = await post(codings)
      t.match(answer, /^HTTP\/1\.1 501 /, codings)
      t.match(answer, /\r\nconnection: close\r\n/i)
      t.match(answer, /\r\nx-request-id: [\w-]+\r\n/i)
      t.match(answer, /"code":"KG_TRANSFER_CODING_UNSUPPORTED"/)
    }
    t.same(handled, [], 'no handler ran')
    for (const codings of ['chunked', 'Chunked', ' chunked ']) {
      const answer = await post(codings)
      t.match(answer, /^HTTP\/1\.1 200 /, `${codings}: fine`)
      t.match(answer, /\{"body":\{"a":1\}\}/)
    }
    t.equal(handled.length, 3)
  },
)

t.test(
  'what Node’s parser refuses gets keygate’s JSON, a request id and no-store; one answer per connection',
  async (t) => {
    const { origin, handled } = await hygienicApp(t, true)
    const cases: Array<[string, string, number, string]> = [
      ['garbage', 'GARBAGE\r\n\r\n', 400, 'KG_MALFORMED_REQUEST'],
      [
        'chunked twice',
        'POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked, chunked\r\n\r\n0\r\n\r\n',
        400,
        'KG_MALFORMED_REQUEST',
      ],
      [
        'Transfer-Encoding and Content-Length',
        'POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n0\r\n\r\n',
        400,
        'KG_MALFORMED_REQUEST',
      ],
      [
        'a head over 16 KiB',
        `GET /files/a HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`,
        431,
        'KG_HEADERS_TOO_LARGE',
      ],
      // Refused by keygate (501) before the body; the unframeable bytes after it get no second answer.
      [
        'gzip, then bytes the parser cannot frame',
        'POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: gzip\r\n\r\n5\r\nhello\r\nzz garbage\r\n\r\n',
        501,
        'KG_TRANSFER_CODING_UNSUPPORTED',
      ],
    ]
    for (const [name, bytes, status, code] of cases) {
      const answer = await rawExchange(origin, bytes)
      t.equal(answer.match(/^HTTP\/1\.1 /gm)?.length, 1, `${name}: one answer`)
      t.match(answer, new RegExp(`^HTTP/1\\.1 ${status} `), `${name}: ${status}`)
      t.match(answer, /\r\nx-request-id: [\w-]+\r\n/i, `${name}: a request id`)
      t.match(answer, /\r\ncache-control: no-store\r\n/i)
      t.match(answer, /\r\nconnection: close\r\n/i)
      t.match(answer, `"code":"${code}"`)
      t.notMatch(answer, /statusCode|Client Error/, `${name}: not Fastify's own body`)
    }
    t.same(handled, [], 'no handler ran')
  },
)

t.test('apiAnswers: JSON answers are no-store and nosniff; a route’s own Cache-Control stays', async (t) => {
  const { origin } = await hygienicApp(t, true)
  let r = await rawRequest(origin, { target: '/files/a' })
  t.equal(r.headers['cache-control'], 'no-store')
  t.equal(r.headers['x-content-type-options'], 'nosniff')
  r = await rawRequest(origin, { target: '/jwks' })
  t.equal(r.headers['cache-control'], 'no-store', 'a +json type is JSON')
  t.equal(r.headers['x-content-type-options'], 'nosniff')
  r = await rawRequest(origin, { target: '/cached' })
  t.equal(r.headers['cache-control'], 'public, max-age=60', "the route's own Cache-Control")
  t.equal(r.headers['x-content-type-options'], 'nosniff')
  r = await rawRequest(origin, { target: '/download' })
  t.equal(r.headers['cache-control'], 'private, max-age=5')
  r = await rawRequest(origin, { target: '/text' })
  t.equal(r.headers['cache-control'], undefined, 'not JSON: untouched')
  t.equal(r.headers['x-content-type-options'], undefined)
  r = await rawRequest(origin, { target: '/nowhere' })
  t.equal(r.status, 404)
  t.equal(r.headers['cache-control'], 'no-store', 'errors too')
})

t.test('without apiAnswers (the gateway) answers pass as they are, errors excepted', async (t) => {
  const { origin } = await hygienicApp(t, false)
  let r = await rawRequest(origin, { target: '/files/a' })
  t.equal(r.headers['cache-control'], undefined)
  t.equal(r.headers['x-content-type-options'], undefined)
  r = await rawRequest(origin, { target: '/nowhere' })
  t.equal(r.headers['cache-control'], 'no-store', 'its own errors are never cached')
  t.equal(r.headers['x-content-type-options'], 'nosniff')
  t.match(r.headers['x-request-id'], /./)
  r = await rawRequest(origin, { target: '/%zz' })
  t.equal(r.status, 400)
  t.equal(r.json?.code, 'KG_MALFORMED_URL')
  r = await rawRequest(origin, { target: '/files/a', headers: [['host', 'other']] })
  t.equal(r.status, 400, 'the request checks are the same')
})

t.test(
  'listen opens the public port and the ops listener; /readyz and /metrics only on the latter',
  async (t) => {
    const app = Fastify(serverOptions({ logger: createLogger({ name: 'test', level: 'silent' }) }))
    registerErrorHandling(app)
    await app.register(operations, { component: 'test' })
    t.teardown(() => app.close())
    const { address, ops } = await listen(app, {
      host: '127.0.0.1',
      port: 0,
      ops: { host: '127.0.0.1', port: 0 },
    })
    t.not(address, ops, 'two listeners')
    t.match(ops, /^http:\/\/127\.0\.0\.1:\d+$/, 'the ops listener on the host it was given')
    t.equal((await request(`${address}/healthz`)).statusCode, 200, '/healthz is public')
    for (const path of ['/readyz', '/metrics']) {
      const pub = await request(`${address}${path}`)
      t.equal(pub.statusCode, 404, `${path} is not on the public port`)
      await pub.body.dump()
      const res = await request(`${ops}${path}`)
      t.equal(res.statusCode, 200, `${path} on the ops listener`)
      await res.body.dump()
    }
    const server = app.operations.server
    t.same(
      {
        headersMs: server.headersTimeout,
        requestMs: server.requestTimeout,
        keepAliveMs: server.keepAliveTimeout,
        idleMs: server.timeout,
      },
      OPS_TIMEOUTS,
      'the ops listener has its own timeouts',
    )
    const answer = await rawExchange(ops, 'GARBAGE\r\n\r\n')
    t.match(answer, /^HTTP\/1\.1 400 /, 'a malformed request on the ops listener')
    t.match(answer, '"code":"KG_MALFORMED_REQUEST"')
  },
)

t.test('an ops port in use fails the start and leaves the public port closed', async (t) => {
  const taken = createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => taken.close(resolve)))
  const app = Fastify(serverOptions({ logger: createLogger({ name: 'test', level: 'silent' }) }))
  await app.register(operations, { component: 'test' })
  t.teardown(() => app.close())
  const port = (taken.address() as AddressInfo).port
  await t.rejects(listen(app, { host: '127.0.0.1', port: 0, ops: { host: '127.0.0.1', port } }), {
    code: 'EADDRINUSE',
  })
  t.notOk(app.server.listening, 'the public listener was closed again')
})
