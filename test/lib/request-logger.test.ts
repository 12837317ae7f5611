import { Writable } from 'node:stream'
import Fastify from 'fastify'
import type { Logger } from 'pino'
import t from 'tap'
import { createLogger, serverOptions } from '../../lib/server.js'

/** A server on serverOptions whose logger writes JSON lines into `lines`, counting the children it makes. */
function app(level: string) {
  const lines: Array<Record<string, any>> = []
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l))
      cb()
    },
  })
  const logger = createLogger({ name: 'test', level, stream })
  const children = { made: 0 }
  // pino's children inherit this method from their parent: count the ones bound to a request id.
  const child = logger.child
  logger.child = function (this: Logger, ...args: Parameters<Logger['child']>) {
    if ('reqId' in args[0]) children.made++
    return child.apply(this, args)
  } as Logger['child']
  const fastify = Fastify(serverOptions({ logger, requestLog: 'failures' }))
  fastify.get('/quiet', async (request) => {
    request.log.debug('below the level')
    return { ok: true }
  })
  fastify.get('/talks', async (request) => {
    request.log.info({ step: 1 }, 'said at info')
    request.log.child({ part: 'inner' }).warn('said by a child')
    return { level: request.log.level }
  })
  fastify.get('/warn-only', { logLevel: 'warn' }, async (request) => {
    request.log.info('below the route level')
    request.log.warn('at the route level')
    return { level: request.log.level }
  })
  t.teardown(() => fastify.close())
  return { fastify, lines, children }
}

t.test('a request that logs nothing at the level makes no child logger', async (t) => {
  const { fastify, lines, children } = app('info')
  const res = await fastify.inject('/quiet')
  t.equal(res.statusCode, 200)
  t.equal(children.made, 0, 'no pino child for a request passed on quietly')
  t.same(lines, [])
})

t.test('the first line makes the child: the same bindings, level and nesting as before', async (t) => {
  const { fastify, lines, children } = app('info')
  const res = await fastify.inject({ url: '/talks', headers: { 'x-request-id': 'req-1' } })
  t.same(res.json(), { level: 'info' })
  t.equal(children.made, 1, 'one child for the request (its own child is made by that child)')
  t.match(lines, [
    { level: 30, msg: 'said at info', reqId: 'req-1', step: 1 },
    { level: 40, msg: 'said by a child', reqId: 'req-1', part: 'inner' },
  ])
})

t.test('at debug, the request lines and debug calls are all written', async (t) => {
  const { fastify, lines } = app('debug')
  await fastify.inject({ url: '/quiet', headers: { 'x-request-id': 'req-2' } })
  t.same(
    lines.map((l) => [l.msg, l.reqId]),
    [
      ['incoming request', 'req-2'],
      ['below the level', 'req-2'],
      ['request completed', 'req-2'],
    ],
  )
})

t.test('a route with its own log level gets a child at that level at once', async (t) => {
  const { fastify, lines, children } = app('info')
  const res = await fastify.inject('/warn-only')
  t.same(res.json(), { level: 'warn' })
  t.equal(children.made, 1)
  t.same(
    lines.map((l) => l.msg),
    ['at the route level'],
  )
})
