import t from 'tap'
import { request } from 'undici'
import { startEchoGateway } from './helpers/servers.js'

t.test('hop-by-hop headers, and those Connection lists, stay on the upstream’s hop', async (t) => {
  const { upstream, gw } = await startEchoGateway(t)
  upstream.handle = (_request, reply) =>
    reply
      .header('connection', 'x-secret')
      .header('x-secret', 'upstream hop only')
      .header('keep-alive', 'timeout=1')
      .header('access-control-allow-origin', '*')
      .header('x-request-id', 'upstream-made')
      .header('set-cookie', ['a=1', 'b=2'])
      .send({ ok: true })
  const res = await request(`${gw.url}/b`, { headers: { 'x-request-id': 'trace-2' } })
  await res.body.json()
  t.equal(res.headers['x-secret'], undefined, 'a header the upstream lists in Connection is dropped')
  t.equal(res.headers['access-control-allow-origin'], undefined, 'the gateway alone decides CORS')
  t.not(res.headers['keep-alive'], 'timeout=1')
  t.equal(res.headers['x-request-id'], 'trace-2', 'the request id is the gateway’s')
  t.same(res.headers['set-cookie'], ['a=1', 'b=2'], 'repeated headers survive')
})
