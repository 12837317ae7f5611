import { Type } from '@sinclair/typebox'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { componentSchema, durationMs, loadConfig } from '../../lib/config.js'

const Schema = componentSchema({ WIDGETS: Type.Integer({ minimum: 1, default: 3 }) })

t.test('defaults and derived neighbour URLs', async (t) => {
  const c = loadConfig(Schema, { env: {} })
  t.equal(c.WIDGETS, 3)
  t.equal(c.HOST, '127.0.0.1')
  t.equal(c.ISSUER_URL, 'http://127.0.0.1:4000')
  t.equal(c.GATEWAY_URL, 'http://127.0.0.1:8080')
  const moved = loadConfig(Schema, { env: { ISSUER_PORT: '5000', GATEWAY_URL: 'https://gw.example/' } })
  t.equal(moved.ISSUER_URL, 'http://127.0.0.1:5000')
  t.equal(moved.GATEWAY_URL, 'https://gw.example', 'trailing slash dropped')
  t.equal(c.PUBLIC_URL, c.GATEWAY_URL, 'the public address defaults to the gateway URL')
  const behind = loadConfig(Schema, {
    env: { GATEWAY_URL: 'http://gateway:8080', PUBLIC_URL: 'https://keygate.example/' },
  })
  t.equal(behind.PUBLIC_URL, 'https://keygate.example')
})

t.test('a bad setting fails fast with its name', async (t) => {
  t.throws(() => loadConfig(Schema, { env: { WIDGETS: '0' } }), /WIDGETS/)
  t.throws(() => loadConfig(Schema, { env: { ISSUER_PORT: 'eighty' } }), /ISSUER_PORT/)
  t.throws(() => loadConfig(Schema, { env: { ISSUER_URL: 'ftp://x' } }), /ISSUER_URL/)
})

t.test('a JSON file supplies settings and the environment overrides it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kg-config-'))
  const file = join(dir, 'config.json')
  writeFileSync(file, JSON.stringify({ WIDGETS: 7, HOST: '0.0.0.0' }))
  const c = loadConfig(Schema, { env: { KEYGATE_CONFIG: file, HOST: '127.0.0.2' } })
  t.equal(c.WIDGETS, 7)
  t.equal(c.HOST, '127.0.0.2')
  writeFileSync(file, '[1,2]')
  t.throws(() => loadConfig(Schema, { env: { KEYGATE_CONFIG: file } }), /JSON object/)
  t.throws(() => loadConfig(Schema, { env: { KEYGATE_CONFIG: join(dir, 'missing.json') } }), /cannot read/)
})

t.test('durations', async (t) => {
  t.equal(durationMs('15m', 'X'), 900_000)
  t.equal(durationMs('30', 'X'), 30_000)
  t.equal(durationMs('250ms', 'X'), 250)
  t.equal(durationMs('3d', 'X'), 259_200_000)
  t.throws(() => durationMs('soon', 'ACCESS_TOKEN_TTL'), /ACCESS_TOKEN_TTL/)
})
