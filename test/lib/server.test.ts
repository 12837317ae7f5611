import { Writable } from 'node:stream'
import Fastify from 'fastify'
import t from 'tap'
import { createLogger, serverOptions } from '../../lib/server.js'

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
