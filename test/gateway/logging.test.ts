import t from 'tap'
import { request } from 'undici'
import { createLogger } from '../../lib/server.js'
import { Writable } from 'node:stream'
import { startEchoGateway } from './helpers/servers.js'

t.test('at info, proxied requests write no line; a denial writes its reason and the request', async (t) => {
  const lines: Array<Record<string, any>> = []
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l))
      cb()
    },
  })
  const { issuer, gw } = await startEchoGateway(t, {
    logger: createLogger({ name: 'gateway', level: 'info', stream }),
    routes: [{ prefix: '/api/echo', upstream: 'echo', auth: { mode: 'required', roles: ['admin'] } }],
  })
  const url = `${gw.url}/api/echo/x`

  const ok = await request(url, {
    headers: { authorization: `Bearer ${await issuer.mint({ roles: ['admin'] })}` },
  })
  await ok.body.dump()
  t.equal(ok.statusCode, 200)
  t.same(
    lines.filter((l) => l.req || l.res),
    [],
    'no per-request line for a request passed on',
  )

  const denied = await request(url, {
    headers: { authorization: `Bearer ${await issuer.mint({ sub: 'user-7' })}` },
  })
  await denied.body.dump()
  t.equal(denied.statusCode, 403)
  t.match(
    lines.find((l) => l.msg === 'authentication refused'),
    { level: 30, code: 'KG_INSUFFICIENT_SCOPE', sub: 'user-7' },
    'the denial with its subject and reason',
  )
  t.match(
    lines.find((l) => l.msg === 'request completed'),
    {
      level: 30,
      req: { method: 'GET', url: '/api/echo/x' },
      res: { statusCode: 403 },
    },
  )
})
