/**
 * Listener timeouts (lib/server.ts), over real sockets: a client too slow with its request's head or body gets
 * keygate's 408 and a closed connection; an idle keep-alive connection, or one where nothing moves, is
 * closed. The settings are checked when they load.
 */
import { connect } from 'node:net'
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import { loadConfig, componentSchema } from '../../lib/config.js'
import { registerErrorHandling } from '../../lib/errors.js'
import {
  createLogger,
  DEFAULT_LISTENER_TIMEOUTS,
  listenerTimeouts,
  type ListenerTimeouts,
  serverOptions,
} from '../../lib/server.js'

/** Far longer than any timeout under test: a hung test fails instead of waiting for tap. */
const GUARD_MS = 20_000

async function listening(t: Test, timeouts: ListenerTimeouts) {
  const app = Fastify(serverOptions({ logger: createLogger({ name: 'test', level: 'silent' }), timeouts }))
  registerErrorHandling(app)
  app.post('/echo', async (request) => ({ got: request.body }))
  app.get('/ok', async () => ({ ok: true }))
  app.get('/quiet', async () => {
    await new Promise((r) => setTimeout(r, 1_500))
    return { late: true }
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  return (app.server.address() as AddressInfo).port
}

/** Writes `data`, then collects the answer until the server closes (or the guard runs out: `timedOut`). */
function exchange(port: number, data: string): Promise<{ text: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port })
    const chunks: Buffer[] = []
    const guard = setTimeout(() => {
      socket.destroy()
      resolve({ text: Buffer.concat(chunks).toString(), timedOut: true })
    }, GUARD_MS)
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('error', () => {})
    socket.on('close', () => {
      clearTimeout(guard)
      resolve({ text: Buffer.concat(chunks).toString(), timedOut: false })
    })
    socket.write(data)
  })
}

const SHORT: ListenerTimeouts = { headersMs: 300, requestMs: 600, keepAliveMs: 300, idleMs: 800 }

t.test('a head that does not arrive in time: 408 with keygate JSON, connection closed', async (t) => {
  const port = await listening(t, SHORT)
  const { text, timedOut } = await exchange(port, 'GET /ok HTTP/1.1\r\nhost: x\r\nx-slow: ')
  t.notOk(timedOut)
  t.match(text, /^HTTP\/1\.1 408 Request Timeout\r\n/)
  t.match(text, /connection: close/i)
  const body = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4))
  t.same(body, {
    error: 'request_timeout',
    code: 'KG_REQUEST_TIMEOUT',
    message: 'The request was not received in time',
  })
})

t.test('a body that does not arrive in time: 408, connection closed', async (t) => {
  const port = await listening(t, SHORT)
  const { text, timedOut } = await exchange(
    port,
    'POST /echo HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 50\r\n\r\n{"a":',
  )
  t.notOk(timedOut)
  t.match(text, /^HTTP\/1\.1 408 /)
  t.match(text, /"code":"KG_REQUEST_TIMEOUT"/)
})

t.test('requests in time are answered, and an idle keep-alive connection is then closed', async (t) => {
  const port = await listening(t, SHORT)
  const { text, timedOut } = await exchange(port, 'GET /ok HTTP/1.1\r\nhost: x\r\n\r\n')
  t.notOk(timedOut, 'the server closed the idle connection')
  t.match(text, /^HTTP\/1\.1 200 /)
  t.match(text, /\{"ok":true\}$/)
})

t.test('a connection where nothing moves for the idle timeout is closed', async (t) => {
  const port = await listening(t, { ...SHORT, idleMs: 300 })
  const { text, timedOut } = await exchange(port, 'GET /quiet HTTP/1.1\r\nhost: x\r\n\r\n')
  t.notOk(timedOut)
  t.equal(text, '', 'closed without an answer (none is possible once a handler runs)')
})

t.test('the settings load with their defaults and are checked', async (t) => {
  const schema = componentSchema({})
  t.same(listenerTimeouts(loadConfig(schema, { env: {} })), DEFAULT_LISTENER_TIMEOUTS)
  t.same(
    listenerTimeouts(
      loadConfig(schema, {
        env: {
          HTTP_HEADERS_TIMEOUT: '2s',
          HTTP_REQUEST_TIMEOUT: '3m',
          HTTP_KEEP_ALIVE_TIMEOUT: '500ms',
          HTTP_IDLE_TIMEOUT: '90',
        },
      }),
    ),
    { headersMs: 2_000, requestMs: 180_000, keepAliveMs: 500, idleMs: 90_000 },
  )
  t.throws(
    () =>
      listenerTimeouts(
        loadConfig(schema, { env: { HTTP_HEADERS_TIMEOUT: '2m', HTTP_REQUEST_TIMEOUT: '1m' } }),
      ),
    /HTTP_HEADERS_TIMEOUT must not exceed HTTP_REQUEST_TIMEOUT/,
  )
  t.throws(
    () => listenerTimeouts(loadConfig(schema, { env: { HTTP_IDLE_TIMEOUT: '0' } })),
    /HTTP_IDLE_TIMEOUT/,
  )
})
