import t from 'tap'
import { loadFilesConfig } from '../../../services/files/config.js'

t.test('defaults: port 4103, 10 MiB, 60 s links, a generated secret', async (t) => {
  const config = loadFilesConfig({})
  t.equal(config.FILES_PORT, 4103)
  t.equal(config.FILES_MAX_BYTES, 10 * 1024 * 1024)
  t.equal(config.FILES_LINK_TTL, 60_000, 'in milliseconds')
  t.equal(config.FILES_LINK_SECRET, undefined)
  t.equal(config.FILES_URL, 'http://127.0.0.1:4103')
  t.equal(config.FILES_QUOTA_BYTES, 100 * 1024 * 1024, 'a 100 MiB quota per user')
  t.equal(config.FILES_QUOTA_COUNT, 1000, 'of at most 1000 files')
})

t.test('bad settings are named', async (t) => {
  t.throws(() => loadFilesConfig({ FILES_MAX_BYTES: '-1' }), /FILES_MAX_BYTES/)
  t.throws(() => loadFilesConfig({ FILES_MAX_BYTES: 'lots' }), /FILES_MAX_BYTES/)
  t.throws(() => loadFilesConfig({ FILES_LINK_TTL: '0s' }), /FILES_LINK_TTL must be between 1s and 1h/)
  t.throws(() => loadFilesConfig({ FILES_LINK_TTL: '2h' }), /FILES_LINK_TTL/)
  t.throws(() => loadFilesConfig({ FILES_LINK_SECRET: 'short' }), /FILES_LINK_SECRET/)
  t.throws(() => loadFilesConfig({ FILES_QUOTA_BYTES: '-1' }), /FILES_QUOTA_BYTES/)
  t.throws(() => loadFilesConfig({ FILES_QUOTA_BYTES: '1e3x' }), /FILES_QUOTA_BYTES/)
  t.throws(() => loadFilesConfig({ FILES_QUOTA_COUNT: '1.5' }), /FILES_QUOTA_COUNT/)
  t.equal(loadFilesConfig({ FILES_LINK_TTL: '5m' }).FILES_LINK_TTL, 300_000)
  t.equal(loadFilesConfig({ FILES_QUOTA_BYTES: '0' }).FILES_QUOTA_BYTES, 0, 'a zero quota: no uploads')
})
