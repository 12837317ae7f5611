import t from 'tap'
import { request } from 'undici'
import { buildGateway } from '../../gateway/app.js'
import { loadGatewayConfig } from '../../gateway/config.js'
import { createLogger } from '../../lib/server.js'
import { Writable } from 'node:stream'
import { startEchoUpstream, startIssuer } from './helpers/servers.js'

t.test('at info, proxied requests write no line; a denial writes its reason and the request', async (t) => {
  const issuer = await startIssuer(t)
  const upstream = await startEchoUpstream(t)
  const lines: Array<Record<string, any>> = []
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l))
      cb()
    },
  })
  const app = await buildGateway({
    config: loadGatewayConfig({
      KEYS_DIR: t.testdir(),
      TRUSTED_ISSUERS: JSON.stringify([{ issuer: issuer.url, audiences: [issuer.audience] }]),
    }),
    logger: createLogger({ name: 'gateway', level: 'info', stream }),
    routes: {
      upstreams: { echo: upstream.url },
      routes: [{ prefix: '/api/echo', upstream: 'echo', auth: { mode: 'required', roles: ['admin'] } }],
    },
  })
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port: 0 })
  await app.auth.ready()
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/api/echo/x`

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
