import { once } from 'node:events'
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { startEchoGateway, startGateway, startIssuer } from './helpers/servers.js'

/** A raw upstream whose answers the test writes by hand, piece by piece. */
async function startManualUpstream(t: Test) {
  const responses: ServerResponse[] = []
  const arrived: Array<() => void> = []
  const server = createServer((_req, res) => {
    responses.push(res)
    arrived.shift()?.()
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    next: () => new Promise<ServerResponse>((resolve) => arrived.push(() => resolve(responses.at(-1)!))),
  }
}

const routesTo = (url: string) => ({
  upstreams: { up: url },
  routes: [{ prefix: '/', upstream: 'up', auth: { mode: 'none' as const } }],
})

t.test('an answer that arrives whole is relayed whole, with its length', async (t) => {
  const { upstream, gw } = await startEchoGateway(t)
  upstream.handle = (_request, reply) => reply.header('content-type', 'text/plain').send('x'.repeat(1000))
  const res = await request(`${gw.url}/whole`)
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-length'], '1000')
  t.equal(await res.body.text(), 'x'.repeat(1000))
  const head = await request(`${gw.url}/whole`, { method: 'HEAD' })
  t.equal(head.headers['content-length'], '1000', 'HEAD keeps the upstream’s length')
  t.equal(await head.body.text(), '')
})

t.test(
  'an answer whose body comes later streams: the head and first part reach the client first',
  async (t) => {
    const issuer = await startIssuer(t)
    const upstream = await startManualUpstream(t)
    const gw = await startGateway(t, { issuer, routes: routesTo(upstream.url) })
    const upstreamResponse = upstream.next()
    const pending = request(`${gw.url}/events`)
    const res = await upstreamResponse
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.write('data: first\n\n')
    const answer = await pending
    t.equal(answer.statusCode, 200, 'the client has the head while the upstream is still writing')
    t.equal(answer.headers['content-type'], 'text/event-stream')
    const body = answer.body[Symbol.asyncIterator]()
    t.equal(Buffer.from((await body.next()).value as Buffer).toString(), 'data: first\n\n')
    res.end('data: last\n\n')
    let rest = ''
    for (let part = await body.next(); !part.done; part = await body.next())
      rest += Buffer.from(part.value).toString()
    t.equal(rest, 'data: last\n\n')
  },
)

t.test('a client that leaves mid-stream ends the upstream exchange', async (t) => {
  const issuer = await startIssuer(t)
  const upstream = await startManualUpstream(t)
  const gw = await startGateway(t, { issuer, routes: routesTo(upstream.url) })
  const upstreamResponse = upstream.next()
  const controller = new AbortController()
  const pending = request(`${gw.url}/endless`, { signal: controller.signal })
  const res = await upstreamResponse
  res.writeHead(200, { 'content-type': 'application/octet-stream' })
  res.write(Buffer.alloc(1024))
  await pending
  const closed = once(res, 'close')
  controller.abort()
  await closed
  t.pass('the upstream response was closed once the client went away')
})
