import { type AddressInfo, createServer } from 'node:net'
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import t from 'tap'
import { request } from 'undici'
import { registerErrorHandling } from '../../lib/errors.js'
import { operations } from '../../lib/operations.js'
import { createLogger, listen, serverOptions } from '../../lib/server.js'

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
