import t from 'tap'
import { request } from 'undici'
import { loadGatewayConfig } from '../../gateway/config.js'
import { startGateway } from '../../gateway/server.js'
import { startIssuer } from './helpers/servers.js'

t.test('startGateway builds and listens on HOST:GATEWAY_PORT', async (t) => {
  const issuer = await startIssuer(t)
  const app = await startGateway(
    loadGatewayConfig({
      GATEWAY_PORT: '0',
      GATEWAY_OPS_PORT: '0',
      LOG_LEVEL: 'silent',
      ISSUER_URL: issuer.url,
      KEYS_DIR: t.testdir(),
    }),
  )
  t.teardown(() => app.close())
  const { port } = app.server.address() as { port: number }
  const res = await request(`http://127.0.0.1:${port}/healthz`)
  t.equal(res.statusCode, 200)
  t.same(await res.body.json(), { status: 'ok' })
})
