/**
 * bin/keygate.ts as a real child process, on the same key directory and database as a running issuer,
 * which serves the change without a restart.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { postgresUnavailable, testDatabase } from '../../helpers/postgres.js'
import { issuerFixture, postgresEnv, tempDir } from './fixtures.js'

const pgSkip = await postgresUnavailable()

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))

interface Run {
  code: number
  stdout: string
  stderr: string
}

function keygate(args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--conditions=keygate-source', '--import', 'tsx', 'bin/keygate.ts', ...args],
      { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, timeout: 30_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0
        resolve({ code, stdout, stderr })
      },
    )
  })
}

/** Polls until `check` holds (the issuer reloads on its scheduler tick, about once a second). */
async function eventually(check: () => Promise<boolean>, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return true
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return false
}

t.test('keys list | rotate | revoke against a running issuer', async (t) => {
  const dir = tempDir(t)
  const env = {
    KEYS_DIR: join(dir, 'keys'),
    DATA_DIR: join(dir, 'data'),
    JWKS_MAX_AGE: '0s',
    KEY_PUBLISH_LEAD: '0s',
    LOG_LEVEL: 'silent',
  }
  const { app } = await issuerFixture(t, { dir, env })
  const jwksKids = async () =>
    ((await app.inject('/.well-known/jwks.json')).json().keys as Array<{ kid: string }>).map((k) => k.kid)
  const first = app.issuer.keys.signingKey().kid
  const next = app.issuer.keys.document.keys.find((k) => k.state === 'next')!.kid

  const list = await keygate(['keys', 'list'], env)
  t.equal(list.code, 0, list.stderr)
  t.match(list.stdout, /^KID\s+STATE\s+CREATED/)
  t.match(list.stdout, new RegExp(`${next}\\s+next`))
  t.match(list.stdout, new RegExp(`${first}\\s+active`))

  const rotate = await keygate(['keys', 'rotate'], env)
  t.equal(rotate.code, 0, rotate.stderr)
  t.match(rotate.stdout, /rotated/)
  t.ok(
    await eventually(async () => app.issuer.keys.signingKey().kid === next),
    'the running issuer signs with the promoted key without a restart',
  )
  t.ok((await jwksKids()).includes(first), 'and still publishes the retired one')
  t.equal(statSync(join(dir, 'keys', 'keyset.json')).mode & 0o777, 0o600)
  t.equal(statSync(join(dir, 'keys')).mode & 0o777, 0o700)

  const revoke = await keygate(['keys', 'revoke', next], env)
  t.equal(revoke.code, 0, revoke.stderr)
  t.match(revoke.stdout, new RegExp(`revoked ${next}`))
  t.ok(
    await eventually(async () => !(await jwksKids()).includes(next)),
    'the revoked key leaves the served JWKS within about a second',
  )
  t.not(app.issuer.keys.signingKey().kid, next)
  t.match(
    await app.issuer.store.listRevocations(0, 10),
    [{ type: 'key', kid: next }],
    'the CLI recorded the event',
  )

  const again = await keygate(['keys', 'revoke', next], env)
  t.equal(again.code, 1)
  t.match(again.stderr, /already revoked/)
  const unknown = await keygate(['keys', 'revoke', 'nope'], env)
  t.equal(unknown.code, 1)
  t.match(unknown.stderr, /KG_KEY_NOT_FOUND/)
})

t.test('rotation too early is refused with the time it becomes possible', async (t) => {
  const dir = tempDir(t)
  const env = { KEYS_DIR: join(dir, 'keys'), DATA_DIR: join(dir, 'data'), LOG_LEVEL: 'silent' }
  await issuerFixture(t, { dir, env })
  // The pair made on first start may rotate at once; the next key it makes must wait the lead.
  t.equal((await keygate(['keys', 'rotate'], env)).code, 0)
  const res = await keygate(['keys', 'rotate'], env)
  t.equal(res.code, 1)
  t.match(res.stderr, /rotation is possible from \d{4}-\d\d-\d\dT/)
  t.match(res.stderr, /KG_KEY_ROTATION_TOO_EARLY/)
})

t.test('list before the first start; usage errors exit 2; bad settings exit 1', async (t) => {
  const dir = tempDir(t)
  const env = { KEYS_DIR: join(dir, 'keys'), DATA_DIR: join(dir, 'data') }
  const usageCases = [[], ['keys', 'revoke'], ['keys', 'list', 'extra'], ['--nope'], ['start', 'nothing']]
  // Independent runs: start them together (each child spends most of its time loading TypeScript).
  const [empty, help, badConfig, ...usage] = await Promise.all([
    keygate(['keys', 'list'], env),
    keygate(['--help'], env),
    keygate(['keys', 'list'], { ...env, KEY_PUBLISH_LEAD: '1m' }),
    ...usageCases.map((args) => keygate(args, env)),
  ])
  t.equal(empty!.code, 0)
  t.match(empty!.stdout, /no key set yet/)
  usage.forEach((res, i) => {
    t.equal(res.code, 2, `keygate ${usageCases[i]!.join(' ')}`)
    t.match(res.stderr, /Usage:/)
  })
  t.equal(help!.code, 0)
  t.match(help!.stdout, /keygate keys revoke <kid>/)
  t.equal(badConfig!.code, 1)
  t.match(badConfig!.stderr, /^keygate: invalid configuration: KEY_PUBLISH_LEAD/)
})

t.test(
  'keys list | rotate | revoke on the PostgreSQL key set of a running issuer',
  { skip: pgSkip },
  async (t) => {
    const db = await testDatabase(t)
    const dir = tempDir(t)
    // No polling: only the notification can bring the CLI's revocation to the running issuer.
    const env = {
      ...postgresEnv(db.url),
      DATA_DIR: join(dir, 'data'),
      LOG_LEVEL: 'silent',
      FEED_POLL_INTERVAL: '1h',
    }
    const { app } = await issuerFixture(t, { dir, env })
    const first = app.issuer.keys.signingKey().kid
    const next = app.issuer.keys.document.keys.find((k) => k.state === 'next')!.kid

    const list = await keygate(['keys', 'list'], env)
    t.equal(list.code, 0, list.stderr)
    t.match(list.stdout, new RegExp(`${first}\\s+active`))
    t.match(list.stdout, new RegExp(`${next}\\s+next`))

    const rotate = await keygate(['keys', 'rotate'], env)
    t.equal(rotate.code, 0, rotate.stderr)
    t.ok(
      await eventually(async () => app.issuer.keys.signingKey().kid === next),
      'the running issuer signs with the promoted key within about a second',
    )
    const revoke = await keygate(['keys', 'revoke', next], env)
    t.equal(revoke.code, 0, revoke.stderr)
    const [event] = await app.issuer.store.listRevocations(0, 10)
    t.match(event, { type: 'key', kid: next }, 'the CLI recorded the event in the shared database')
    t.ok(
      await eventually(async () => app.issuer.feed.fanout.cursor === event!.cursor),
      "and the running issuer's feed has it (notified, not polled for)",
    )
    t.ok(await eventually(async () => app.issuer.keys.signingKey().kid !== next))

    const wrongKey = await keygate(['keys', 'list'], {
      ...env,
      KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    })
    t.equal(wrongKey.code, 1)
    t.match(wrongKey.stderr, /sealed with a different KEY_ENCRYPTION_KEY/)
    const noKey = await keygate(['keys', 'list'], { DATABASE_URL: db.url })
    t.equal(noKey.code, 1)
    t.match(noKey.stderr, /KEY_ENCRYPTION_KEY is required when DATABASE_URL is PostgreSQL/)
  },
)
