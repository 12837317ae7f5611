import { join } from 'node:path'
import t from 'tap'
import { loadIssuerConfig } from '../../../services/issuer/config.js'
import { startIssuer } from '../../../services/issuer/server.js'
import { tempDir } from './fixtures.js'

t.test('startIssuer listens, generates keys on first start and closes its store', async (t) => {
  const dir = tempDir(t)
  const config = loadIssuerConfig({
    ISSUER_PORT: '0',
    ISSUER_OPS_PORT: '0',
    KEYS_DIR: join(dir, 'keys'),
    DATA_DIR: join(dir, 'data'),
    LOG_LEVEL: 'silent',
  })
  const app = await startIssuer(config)
  const address = app.server.address()
  t.ok(address && typeof address === 'object' && address.port > 0)
  const port = (address as { port: number }).port
  const res = await fetch(`http://127.0.0.1:${port}/.well-known/jwks.json`)
  t.equal(res.status, 200)
  t.equal(((await res.json()) as { keys: unknown[] }).keys.length, 2)
  const ops = (app.operations.server.address() as { port: number }).port
  t.equal((await fetch(`http://127.0.0.1:${ops}/readyz`)).status, 200, 'ready, on the ops listener')
  t.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 404, 'and not on the public port')
  await app.close()
})

t.test('a port in use fails the start and leaves nothing open', async (t) => {
  const dir = tempDir(t)
  const env = {
    KEYS_DIR: join(dir, 'keys'),
    DATA_DIR: join(dir, 'data'),
    LOG_LEVEL: 'silent',
    ISSUER_OPS_PORT: '0',
  }
  const first = await startIssuer(loadIssuerConfig({ ...env, ISSUER_PORT: '0' }))
  t.teardown(() => first.close())
  const port = String((first.server.address() as { port: number }).port)
  await t.rejects(startIssuer(loadIssuerConfig({ ...env, ISSUER_PORT: port })), { code: 'EADDRINUSE' })
})
