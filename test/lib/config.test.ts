import { Type } from '@sinclair/typebox'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import {
  commaList,
  componentSchema,
  DatabaseUrl,
  Duration,
  durationMs,
  loadConfig,
  RateLimitSetting,
} from '../../lib/config.js'

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

t.test('a Duration setting loads once, as milliseconds', async (t) => {
  const Timed = componentSchema({
    WAIT: Duration('15m'),
    LINK_TTL: Duration('60s', { min: '1s', max: '1h' }),
    GRACE: Duration('10s', { min: '100ms' }),
  })
  const c = loadConfig(Timed, { env: {} })
  t.same([c.WAIT, c.LINK_TTL, c.GRACE], [900_000, 60_000, 10_000], 'defaults are decoded too')
  t.equal(loadConfig(Timed, { env: { WAIT: '250ms' } }).WAIT, 250)
  t.equal(loadConfig(Timed, { env: { WAIT: '1.5h' } }).WAIT, 5_400_000)
  t.equal(loadConfig(Timed, { env: { WAIT: '90' } }).WAIT, 90_000, 'a bare number is seconds')

  const dir = mkdtempSync(join(tmpdir(), 'kg-config-'))
  const file = join(dir, 'config.json')
  writeFileSync(file, JSON.stringify({ WAIT: 45, LINK_TTL: '2m' }))
  const fromFile = loadConfig(Timed, { env: { KEYGATE_CONFIG: file } })
  t.same([fromFile.WAIT, fromFile.LINK_TTL], [45_000, 120_000], 'a JSON number is seconds too')
})

t.test('a bad duration names the setting and shows the accepted form', async (t) => {
  const Timed = componentSchema({
    WAIT: Duration('15m'),
    LINK_TTL: Duration('60s', { min: '1s', max: '1h' }),
    GRACE: Duration('10s', { min: '100ms' }),
  })
  const failure = (env: Record<string, string>) => {
    try {
      loadConfig(Timed, { env })
    } catch (err) {
      return (err as Error).message
    }
    return t.fail(`${JSON.stringify(env)} was accepted`)
  }
  for (const bad of ['soon', '15 minutes', '-1s', '1w', '']) {
    const message = failure({ WAIT: bad })
    t.match(
      message,
      /^keygate: invalid configuration: WAIT must be a duration like 250ms, 30s, 15m, 2h or 3d/,
      bad,
    )
    t.notMatch(message, /pattern|\\d|\^/, `${JSON.stringify(bad)}: no regular expression in the message`)
  }
  t.match(failure({ LINK_TTL: '0s' }), /LINK_TTL must be between 1s and 1h$/)
  t.match(failure({ LINK_TTL: '2h' }), /LINK_TTL must be between 1s and 1h$/)
  t.match(failure({ GRACE: '99ms' }), /GRACE must be at least 100ms$/)
  t.equal(
    loadConfig(Timed, { env: { LINK_TTL: '1h', GRACE: '100ms' } }).LINK_TTL,
    3_600_000,
    'bounds are inclusive',
  )
  t.match(
    failure({ WAIT: 'soon', GRACE: 'later' }),
    /WAIT must be .*; GRACE must be /,
    'every bad setting at once',
  )
  t.match(
    failure({ ISSUER_URL: 'ftp://x' }),
    /ISSUER_URL must be an http\(s\) URL like https:\/\/keygate.example/,
    'URLs are explained the same way',
  )
})

t.test('one comma-list parser: trimmed, empty entries dropped, optionally lower-cased', async (t) => {
  t.same(commaList('a,b'), ['a', 'b'])
  t.same(commaList(' a , ,b,, '), ['a', 'b'])
  t.same(commaList(''), [])
  t.same(commaList(' , '), [])
  t.same(commaList('X-User-Id,Remote-User'), ['X-User-Id', 'Remote-User'], 'case kept by default')
  t.same(commaList(' X-User-Id, ,x-other ', true), ['x-user-id', 'x-other'])
})

t.test('a rate-limit setting loads as a count per window in milliseconds', async (t) => {
  const Limited = componentSchema({
    LIMIT: RateLimitSetting('600/1m'),
    SLOW: RateLimitSetting('20/1m', '1s'),
  })
  const c = loadConfig(Limited, { env: {} })
  t.same(c.LIMIT, { max: 600, windowMs: 60_000 })
  t.same(loadConfig(Limited, { env: { LIMIT: '5/250ms' } }).LIMIT, { max: 5, windowMs: 250 })
  t.same(loadConfig(Limited, { env: { LIMIT: '5/10' } }).LIMIT, { max: 5, windowMs: 10_000 }, 'seconds')
  t.throws(() => loadConfig(Limited, { env: { LIMIT: 'lots' } }), {
    message: /LIMIT must be a count and a duration like 600\/1m/,
  })
  t.throws(() => loadConfig(Limited, { env: { LIMIT: '0/1m' } }), {
    message: /LIMIT must allow at least 1 request per window$/,
  })
  t.throws(() => loadConfig(Limited, { env: { SLOW: '5/500ms' } }), {
    message: /SLOW must allow at least 1 request per window of at least 1s$/,
  })
})

t.test(
  'a KEYGATE_CONFIG file is strict: an unknown key is refused with its name and the nearest one',
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'kg-config-'))
    const file = join(dir, 'config.json')
    // Settings of another component (declared by another schema in this process) are fine: one file serves all.
    componentSchema({ OTHER_COMPONENT_SETTING: Type.String({ default: 'x' }) })
    writeFileSync(file, JSON.stringify({ WIDGETS: 4, OTHER_COMPONENT_SETTING: 'y' }))
    t.equal(loadConfig(Schema, { env: { KEYGATE_CONFIG: file } }).WIDGETS, 4)

    writeFileSync(file, JSON.stringify({ ISSUER_PROT: 4001 }))
    t.throws(() => loadConfig(Schema, { env: { KEYGATE_CONFIG: file } }), {
      message: `keygate: invalid configuration: KEYGATE_CONFIG file ${file} has unknown setting ISSUER_PROT (did you mean ISSUER_PORT?)`,
    })
    writeFileSync(file, JSON.stringify({ widgets: 4, SOMETHING_ELSE_ENTIRELY: 1 }))
    t.throws(() => loadConfig(Schema, { env: { KEYGATE_CONFIG: file } }), {
      message: /unknown settings widgets \(did you mean WIDGETS\?\), SOMETHING_ELSE_ENTIRELY$/,
    })
  },
)

t.test('a database setting takes a SQLite path or a PostgreSQL URL, nothing else', async (t) => {
  const Stored = componentSchema({ STORE_DATABASE_URL: DatabaseUrl() })
  for (const good of [
    'data/app.db',
    'sqlite:data/app.db',
    ':memory:',
    'postgres://u:p@db:5432/kg',
    'postgresql://db/kg',
  ]) {
    t.equal(loadConfig(Stored, { env: { STORE_DATABASE_URL: good } }).STORE_DATABASE_URL, good, good)
  }
  t.equal(
    loadConfig(Stored, { env: {} }).STORE_DATABASE_URL,
    undefined,
    'unset: the component picks its file',
  )
  for (const bad of ['mysql://db/kg', 'redis://cache', 'postgres://db host/kg', 'file:///x.db']) {
    t.throws(
      () => loadConfig(Stored, { env: { STORE_DATABASE_URL: bad } }),
      {
        message:
          /^keygate: invalid configuration: STORE_DATABASE_URL must be a SQLite file path .* or a PostgreSQL URL/,
      },
      bad,
    )
  }
})

t.test('HOST and every neighbour URL are checked, and the message names the setting', async (t) => {
  t.throws(() => loadConfig(Schema, { env: { HOST: 'bad host' } }), {
    message: /^keygate: invalid configuration: HOST must be a host name or IP address/,
  })
  t.throws(() => loadConfig(Schema, { env: { OPS_HOST: 'a/b' } }), {
    message: /OPS_HOST must be a host name/,
  })
  t.equal(loadConfig(Schema, { env: { HOST: '::1' } }).ISSUER_URL, 'http://[::1]:4000')
  t.throws(() => loadConfig(Schema, { env: { PUBLIC_URL: 'http://[::1' } }), {
    message: /^keygate: invalid configuration: PUBLIC_URL must be an http\(s\) URL/,
  })
})

t.test('a secret setting can be read from <SETTING>_FILE', async (t) => {
  const Secretive = componentSchema({
    SOME_SECRET: Type.Optional(Type.String({ minLength: 16 })),
    STORE_DATABASE_URL: DatabaseUrl(),
  })
  const dir = mkdtempSync(join(tmpdir(), 'kg-config-'))
  const secret = join(dir, 'secret')
  writeFileSync(secret, 'a-secret-of-enough-length\n')
  t.equal(
    loadConfig(Secretive, { env: { SOME_SECRET_FILE: secret } }).SOME_SECRET,
    'a-secret-of-enough-length',
    'the trailing newline is dropped',
  )
  const file = join(dir, 'config.json')
  writeFileSync(file, JSON.stringify({ SOME_SECRET_FILE: secret }))
  t.equal(loadConfig(Secretive, { env: { KEYGATE_CONFIG: file } }).SOME_SECRET, 'a-secret-of-enough-length')
  t.throws(() => loadConfig(Secretive, { env: { SOME_SECRET_FILE: secret, SOME_SECRET: 'x'.repeat(16) } }), {
    message: 'keygate: invalid configuration: set SOME_SECRET or SOME_SECRET_FILE, not both',
  })
  t.throws(() => loadConfig(Secretive, { env: { SOME_SECRET_FILE: join(dir, 'missing') } }), {
    message: /^keygate: invalid configuration: SOME_SECRET_FILE: cannot read .*missing \(ENOENT\)$/,
  })
  writeFileSync(secret, 'short\n')
  const failure = t.throws(() =>
    loadConfig(Secretive, { env: { SOME_SECRET_FILE: secret } }),
  ) as unknown as Error
  t.match(String(failure), /SOME_SECRET/, 'the value is checked like any other')
  t.notMatch(String(failure), /short/, 'without showing it')
  writeFileSync(secret, 'mysql://u:p@db/kg\n')
  t.throws(() => loadConfig(Secretive, { env: { STORE_DATABASE_URL_FILE: secret } }), {
    message: /STORE_DATABASE_URL must be/,
  })
})
