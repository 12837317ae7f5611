import { join } from 'node:path'
import t from 'tap'
import { loadProfileConfig } from '../../../services/profile/config.js'

t.test('defaults: port 4101, neighbours on their default ports', async (t) => {
  const config = loadProfileConfig({})
  t.equal(config.PROFILE_PORT, 4101)
  t.equal(config.ISSUER_URL, 'http://127.0.0.1:4000')
  t.equal(config.GATEWAY_URL, 'http://127.0.0.1:8080')
  t.equal(config.PROFILE_DATABASE_URL, undefined, 'the store defaults to DATA_DIR (see app.ts)')
  t.equal(loadProfileConfig({ PROFILE_PORT: '5101' }).PROFILE_PORT, 5101)
  t.equal(
    loadProfileConfig({ PROFILE_DATABASE_URL: join('x', 'p.db') }).PROFILE_DATABASE_URL,
    join('x', 'p.db'),
  )
  t.throws(() => loadProfileConfig({ PROFILE_PORT: 'http' }), /PROFILE_PORT/)
})
