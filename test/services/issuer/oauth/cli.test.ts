/** `keygate clients …` as a real child process on the database of a running issuer. */
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { basic, oauthFixture, postForm } from './helpers.js'

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url))

function keygate(args: string[], env: Record<string, string>) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      ['--conditions=keygate-source', '--import', 'tsx', 'bin/keygate.ts', ...args],
      { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, timeout: 30_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr })
      },
    )
  })
}

const field = (out: string, name: string) => new RegExp(`^${name}: (\\S+)`, 'm').exec(out)?.[1]

t.test('clients create | list | rotate-secret | disable against a running issuer', async (t) => {
  const f = await oauthFixture(t)
  const env = {
    ISSUER_URL: 'http://issuer.test',
    KEYS_DIR: join(f.dir, 'keys'),
    DATA_DIR: join(f.dir, 'data'),
    LOG_LEVEL: 'silent',
  }
  const created = await keygate(
    [
      'clients',
      'create',
      '--name',
      'nightly job',
      '--audiences',
      'keygate-orders',
      '--scopes',
      'orders:read',
    ],
    env,
  )
  t.equal(created.code, 0, created.stderr)
  const id = field(created.stdout, 'client_id')!
  const secret = field(created.stdout, 'client_secret')!
  t.match(id, /^kgc_/)
  const token = () =>
    postForm(f.app, '/oauth/token', { grant_type: 'client_credentials' }, basic(id, current))
  let current = secret
  t.equal((await token()).statusCode, 200, 'the running issuer knows the new client')

  const list = await keygate(['clients', 'list'], env)
  t.equal(list.code, 0)
  t.match(list.stdout, id)
  t.notOk(list.stdout.includes(secret), 'list never shows a secret')

  const rotated = await keygate(['clients', 'rotate-secret', id], env)
  t.equal(rotated.code, 0, rotated.stderr)
  current = field(rotated.stdout, 'client_secret')!
  t.not(current, secret)
  t.equal(
    (await postForm(f.app, '/oauth/token', { grant_type: 'client_credentials' }, basic(id, secret)))
      .statusCode,
    401,
    'the old secret stops working',
  )
  t.equal((await token()).statusCode, 200, 'the new one works')

  const disabled = await keygate(['clients', 'disable', id], env)
  t.equal(disabled.code, 0, disabled.stderr)
  t.match(disabled.stdout, /DISABLED/)
  t.equal((await token()).statusCode, 401, 'a disabled client cannot authenticate')

  t.equal((await keygate(['clients', 'disable', 'kgc_nobody'], env)).code, 1, 'unknown client')
  t.equal((await keygate(['clients', 'create', '--name', 'x'], env)).code, 2, 'usage: no audiences')
  t.equal((await keygate(['keys', 'list', '--name', 'x'], env)).code, 2, 'usage: client option elsewhere')
})
