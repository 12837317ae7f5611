/**
 * The service skeleton (lib/service.ts) as the services built on it serve it: every one of profile, orders
 * and files gets the HTTP hygiene of lib/server.ts, over real sockets where Node's parser is involved.
 */
import { connect } from 'node:net'
import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { buildFiles } from '../../services/files/app.js'
import { loadFilesConfig } from '../../services/files/config.js'
import { buildOrders } from '../../services/orders/app.js'
import { loadOrdersConfig } from '../../services/orders/config.js'
import { buildProfile } from '../../services/profile/app.js'
import { loadProfileConfig } from '../../services/profile/config.js'
import { createLogger } from '../../lib/server.js'
import { captureLogs } from '../helpers/logs.js'
import { rawRequest } from '../helpers/raw-http.js'
import { listenOnFreePort, startServiceWorld } from '../helpers/services.js'

const SERVICES: Array<{
  name: string
  build: (env: Record<string, string>) => FastifyInstance
  /** A JSON GET route of the service that needs a token. */
  path: string
  /** A route that takes a body. */
  write: string
}> = [
  {
    name: 'profile',
    build: (env) => buildProfile({ config: loadProfileConfig(env), logger: captureLogs().logger }),
    path: '/me',
    write: 'PUT /me',
  },
  {
    name: 'orders',
    build: (env) => buildOrders({ config: loadOrdersConfig(env), logger: captureLogs().logger }),
    path: '/orders',
    write: 'POST /orders',
  },
  {
    name: 'files',
    build: (env) => buildFiles({ config: loadFilesConfig(env), logger: captureLogs().logger }),
    path: '/files',
    write: 'PUT /files/a.json',
  },
]

for (const service of SERVICES) {
  t.test(`${service.name}: keygate errors before routing, and no-store, nosniff JSON`, async (t) => {
    const world = await startServiceWorld(t)
    const app = service.build(world.env)
    const origin = await listenOnFreePort(t, app)
    await app.auth.ready()
    const auth = ['authorization', `Bearer ${await world.token('alice')}`] as const

    let r = await rawRequest(origin, { target: '/%zz' })
    t.equal(r.status, 400, 'a malformed URL')
    t.equal(r.json?.code, 'KG_MALFORMED_URL')
    t.match(r.headers['x-request-id'], /./)
    r = await rawRequest(origin, { target: `${service.path}/%`, headers: [auth] })
    t.equal(r.status, 400, `${service.path}/% too`)
    t.equal(r.json?.code, 'KG_MALFORMED_URL')

    r = await rawRequest(origin, { target: service.path, headers: [auth, ['host', 'evil.example']] })
    t.equal(r.status, 400, 'two Host headers')
    t.equal(r.json?.code, 'KG_HOST_INVALID')

    const [method, path] = service.write.split(' ')
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(new URL(origin).port), '127.0.0.1')
      let text = ''
      socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')))
      socket.on('error', reject)
      socket.on('close', () => resolve(text))
      socket.write(
        `${method} ${path} HTTP/1.1\r\nhost: x\r\n${auth[0]}: ${auth[1]}\r\ncontent-type: application/json\r\n` +
          'transfer-encoding: gzip, chunked\r\nconnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n',
      )
    })
    t.match(answer, /^HTTP\/1\.1 501 /, 'Transfer-Encoding: gzip, chunked')
    t.match(answer, /"code":"KG_TRANSFER_CODING_UNSUPPORTED"/)

    for (const [what, target, headers] of [
      ['an API answer', service.path, [auth]],
      ['a refusal', service.path, []],
      ['/healthz', '/healthz', []],
    ] as const) {
      r = await rawRequest(origin, { target, headers })
      t.match(r.headers['content-type'], /^application\/json/, `${what}: ${r.status}`)
      t.equal(r.headers['cache-control'], 'no-store', `${what}: no-store`)
      t.equal(r.headers['x-content-type-options'], 'nosniff', `${what}: nosniff`)
    }
  })
}

t.test('request logs at info: refusals and failures with their request, answers below 400 not', async (t) => {
  const world = await startServiceWorld(t)
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line))
      cb()
    },
  })
  const logger = createLogger({ name: 'profile', level: 'info', stream })
  const app = buildProfile({ config: loadProfileConfig({ ...world.env, LOG_LEVEL: 'info' }), logger })
  const origin = await listenOnFreePort(t, app)
  await app.auth.ready()
  const completed = () => lines.filter((l) => l.msg === 'request completed')

  let r = await rawRequest(origin, {
    target: '/me',
    headers: [['authorization', `Bearer ${await world.token('alice')}`]],
  })
  t.equal(r.status, 200)
  t.same(completed(), [], 'an answer below 400 writes no request line at info')
  t.same(
    lines.filter((l) => l.msg === 'incoming request'),
    [],
    'nor an incoming line',
  )

  r = await rawRequest(origin, { target: '/me' })
  t.equal(r.status, 401)
  const refused = completed()
  t.equal(refused.length, 1, 'a refusal is logged at info')
  t.match(refused[0], { res: { statusCode: 401 }, req: { method: 'GET', url: '/me' } }, 'with its request')
  t.ok(
    lines.some((l) => l.msg === 'authentication refused' && l.code === 'KG_TOKEN_MISSING'),
    'and the reason',
  )
})
