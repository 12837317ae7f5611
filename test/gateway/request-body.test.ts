/**
 * Request bodies at the gateway, over real sockets: a small body is read whole before the upstream hears of
 * the request (a slow one gets 408 and the upstream never sees it), whatever its framing; a larger one streams
 * once its first 64 KiB are in, and is cut off (408, the upstream request aborted) when it falls below the
 * minimum rate.
 */
import { connect, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { type Echo, startEchoUpstream, startGateway, startIssuer } from './helpers/servers.js'

const KiB = 1024

async function setUp(t: Test, env: Record<string, string> = {}) {
  const issuer = await startIssuer(t)
  const upstream = await startEchoUpstream(t)
  const gw = await startGateway(t, {
    issuer,
    routes: {
      upstreams: { up: upstream.url },
      routes: [{ prefix: '/', upstream: 'up', auth: { mode: 'none' } }],
    },
    env: { GATEWAY_BODY_TIMEOUT: '500ms', ...env },
  })
  return { upstream, gw }
}

/** A raw connection to the gateway that collects what comes back until it closes. */
function open(url: string): { socket: Socket; answer: Promise<string> } {
  const { hostname, port } = new URL(url)
  const socket = connect({ host: hostname, port: Number(port) })
  socket.on('error', () => {})
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  const answer = new Promise<string>((resolve) =>
    socket.once('close', () => resolve(Buffer.concat(chunks).toString('latin1'))),
  )
  return { socket, answer }
}

t.test('a small body that does not arrive in time: 408, and the upstream never hears of it', async (t) => {
  const { upstream, gw } = await setUp(t)
  const { socket, answer } = open(gw.url)
  socket.write(
    'POST /slow HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"a"',
  )
  const text = await answer
  t.match(text, /^HTTP\/1\.1 408 /)
  t.match(text, /connection: close/i)
  t.match(text, /"code":"KG_REQUEST_TIMEOUT"/)
  t.match(text, /x-request-id: \S+/i, 'the answer carries the request id')
  t.equal(upstream.requests, 0, 'no upstream connection was used for it')
})

t.test('a client that hangs up during a small body never reaches the upstream', async (t) => {
  const { upstream, gw } = await setUp(t, { GATEWAY_BODY_TIMEOUT: '30s' })
  const { socket, answer } = open(gw.url)
  socket.write('POST /gone HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n0123456789')
  setTimeout(() => socket.destroy(), 200)
  await answer
  // The gateway is still fine and the upstream saw only what follows.
  const res = await request(`${gw.url}/after`)
  t.equal(res.statusCode, 200)
  t.equal(((await res.body.json()) as Echo).url, '/after')
  t.equal(upstream.requests, 1)
})

t.test('small bodies arrive whole, declared or chunked, and are sent with their length', async (t) => {
  const { upstream, gw } = await setUp(t)
  const declared = await request(`${gw.url}/a`, { method: 'POST', body: 'x'.repeat(1000) })
  const echo = (await declared.body.json()) as Echo
  t.equal(echo.bodyLength, 1000)
  t.equal(echo.headers['content-length'], '1000')

  // Sent in pieces a little apart, within the time limit: the upstream gets one body with its length.
  const { socket, answer } = open(gw.url)
  socket.write(
    'POST /b HTTP/1.1\r\nhost: x\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n',
  )
  await new Promise((r) => setTimeout(r, 50))
  socket.write('6\r\n world\r\n0\r\n\r\n')
  const text = await answer
  t.match(text, /^HTTP\/1\.1 200 /)
  const body = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as Echo
  t.equal(body.bodyLength, 11)
  t.equal(body.headers['content-length'], '11', 'a buffered chunked body goes upstream with its length')
  t.equal(body.headers['transfer-encoding'], undefined)
  t.equal(upstream.requests, 2)
})

t.test('a large body below the minimum rate: 408, and the upstream request is aborted', async (t) => {
  const { upstream, gw } = await setUp(t, { GATEWAY_BODY_MIN_RATE: String(256 * KiB) })
  let upstreamClosed: () => void
  const closed = new Promise<void>((resolve) => (upstreamClosed = resolve))
  let received = 0
  upstream.handle = async (req) => {
    req.raw.on('data', (c: Buffer) => (received += c.length))
    req.raw.once('close', () => upstreamClosed())
    return new Promise(() => {})
  }
  const { socket, answer } = open(gw.url)
  socket.write(`PUT /big HTTP/1.1\r\nhost: x\r\ncontent-length: ${1024 * KiB}\r\n\r\n`)
  // 64 KiB at once (the body starts streaming), then a trickle far below 256 KiB/s.
  socket.write(Buffer.alloc(64 * KiB))
  const trickle = setInterval(() => socket.writable && socket.write(Buffer.alloc(KiB)), 200)
  t.teardown(() => clearInterval(trickle))
  const text = await answer
  clearInterval(trickle)
  t.match(text, /^HTTP\/1\.1 408 /)
  t.match(text, /"code":"KG_REQUEST_TIMEOUT"/)
  await closed
  t.ok(received >= 64 * KiB, 'the first 64 KiB had been streamed upstream')
  t.equal(upstream.requests, 1)
})

t.test('a large body at a good rate streams through whole', async (t) => {
  const { gw } = await setUp(t)
  const body = Buffer.alloc(3 * 64 * KiB + 7, 1)
  const res = await request(`${gw.url}/upload`, { method: 'PUT', body })
  t.equal(((await res.body.json()) as Echo).bodyLength, body.length)
})
