/**
 * The packages as someone else installs them: `npm pack` both workspaces, install the tarballs (and Fastify
 * from the registry) into a fresh app in a temporary directory outside the repository, and run it as its own
 * process. That app verifies tokens of a real keygate issuer with @keygate/fastify-auth and follows its
 * revocation feed: after a logout at the issuer, the same token is refused. @keygate/client is imported in
 * Node for its exports, and both packages' declarations type-check in the app with its own TypeScript.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { request } from 'undici'
import { startProcesses } from '../helpers/processes.js'
import { HttpClient } from '../helpers/system.js'

const ROOT = new URL('../../', import.meta.url).pathname
const run = promisify(execFile)
/** How long the app may take to refuse a revoked token, in milliseconds (the feed delivers in about a second). */
const REVOCATION_DEADLINE_MS = 30_000
const FEED_SECRET = 'outside-app-feed-secret-0123456789'

t.setTimeout(300_000)

/** The environment for npm: ours without the npm_* variables an `npm test` run sets, which would steer it. */
const npmEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('npm_')))

/** The version the repository has installed of `name` (so `--prefer-offline` finds it in the npm cache). */
const installed = (name: string) =>
  (JSON.parse(readFileSync(`${ROOT}node_modules/${name}/package.json`, 'utf8')) as { version: string })
    .version

const work = mkdtempSync(join(tmpdir(), 'kg-outside-app-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))
const tarballs = join(work, 'tarballs')
const app = join(work, 'app')

t.test('npm pack makes both packages, with built JS, declarations and a README', async (t) => {
  mkdirSync(tarballs)
  // prepack builds each package's dist/ first, as it would before a publish.
  await run(
    'npm',
    ['pack', '-w', '@keygate/fastify-auth', '-w', '@keygate/client', '--pack-destination', tarballs],
    { cwd: ROOT, env: npmEnv, maxBuffer: 16 * 1024 * 1024 },
  )
  t.same(
    readdirSync(tarballs).sort(),
    ['keygate-client-0.1.0.tgz', 'keygate-fastify-auth-0.1.0.tgz'],
    'one tarball per package, named by its version',
  )
  for (const tarball of readdirSync(tarballs)) {
    const { stdout } = await run('tar', ['tzf', join(tarballs, tarball)])
    const files = stdout.split('\n')
    for (const file of ['package.json', 'README.md', 'dist/index.js', 'dist/index.d.ts']) {
      t.ok(files.includes(`package/${file}`), `${tarball} holds ${file}`)
    }
    t.notOk(
      files.some((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')),
      `${tarball} holds no TypeScript source`,
    )
    t.notOk(
      files.some((f) => f.includes('/demo/')),
      `${tarball} holds no demo`,
    )
  }
})

t.test('a Fastify app outside the repository installs the tarballs', async (t) => {
  mkdirSync(app)
  writeFileSync(
    join(app, 'package.json'),
    JSON.stringify({
      name: 'outside-app',
      private: true,
      type: 'module',
      dependencies: {
        '@keygate/fastify-auth': `file:${join(tarballs, 'keygate-fastify-auth-0.1.0.tgz')}`,
        '@keygate/client': `file:${join(tarballs, 'keygate-client-0.1.0.tgz')}`,
        fastify: installed('fastify'),
      },
      devDependencies: { typescript: installed('typescript'), '@types/node': installed('@types/node') },
    }),
  )
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], {
    cwd: app,
    env: npmEnv,
    maxBuffer: 16 * 1024 * 1024,
  })
  const manifest = (name: string) =>
    JSON.parse(readFileSync(join(app, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }
  t.equal(manifest('@keygate/fastify-auth').version, '0.1.0', 'the plugin is installed from its tarball')
  t.equal(manifest('@keygate/client').version, '0.1.0', 'the client is installed from its tarball')
})

t.test("the outside app verifies keygate's tokens and follows revocation", async (t) => {
  const system = await startProcesses({
    components: ['issuer'],
    env: { REVOCATION_FEED_SECRET: FEED_SECRET },
  })
  t.teardown(() => system.stop())
  const issuer = system.urls.issuer

  writeFileSync(
    join(app, 'server.mjs'),
    `import Fastify from 'fastify'
import { auth } from '@keygate/fastify-auth'

const issuer = process.env.ISSUER_URL
const app = Fastify()
await app.register(auth, {
  issuers: [{ issuer, audiences: ['keygate-api'], revocationFeed: issuer + '/revocations' }],
  revocationFeed: { secret: process.env.FEED_SECRET },
})
app.get('/whoami', (request) => ({ subject: request.identity.subject, roles: request.identity.roles }))
app.get('/public', { config: { auth: { mode: 'none' } } }, () => ({ open: true }))
await app.listen({ host: '127.0.0.1', port: 0 })
await app.auth.ready()
process.stdout.write(JSON.stringify({ port: app.server.address().port }) + '\\n')
process.on('SIGTERM', () => app.close().then(() => process.exit(0)))
`,
  )
  const server = spawn(process.execPath, ['server.mjs'], {
    cwd: app,
    env: { PATH: process.env.PATH ?? '', ISSUER_URL: issuer, FEED_SECRET },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.teardown(() => stop(server))
  const url = `http://127.0.0.1:${(await firstLine(server)).port}`

  const user = { email: 'outsider@example.com', password: 'a long enough passphrase' }
  const browser = new HttpClient(issuer)
  t.equal((await browser.call('POST', '/auth/register', { body: user })).status, 202, 'registered')
  const login = await browser.call('POST', '/auth/login', { body: user })
  t.equal(login.status, 200, 'logged in at the issuer')
  const token = login.json.access_token as string

  const get = async (path: string, token?: string) => {
    const res = await request(`${url}${path}`, {
      headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    })
    const body = await res.body.text()
    return { status: res.statusCode, challenge: res.headers['www-authenticate'], body }
  }
  t.equal((await get('/public')).status, 200, 'a public route needs no token')
  const anonymous = await get('/whoami')
  t.equal(anonymous.status, 401, 'no token: 401')
  t.match(anonymous.challenge, /^Bearer realm="keygate"/, 'with an RFC 6750 challenge')
  const forged = await get('/whoami', `${token.slice(0, -4)}AAAA`)
  t.equal(forged.status, 401, 'a token with a bad signature: 401')
  t.match(forged.challenge, /error="invalid_token"/, 'challenged as an invalid token')

  const accepted = await get('/whoami', token)
  t.equal(accepted.status, 200, "keygate's token is accepted")
  t.equal(JSON.parse(accepted.body).subject, JSON.parse(atob(token.split('.')[1]!)).sub, 'as its subject')

  const logout = await browser.call('POST', '/auth/logout', {
    headers: { 'x-csrf-token': login.json.csrf_token as string },
  })
  t.equal(logout.status, 204, 'logged out at the issuer')
  const deadline = Date.now() + REVOCATION_DEADLINE_MS
  let after = await get('/whoami', token)
  while (after.status === 200 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    after = await get('/whoami', token)
  }
  t.equal(after.status, 401, 'the logged-out token is refused by the outside app')
  t.match(after.challenge, /error="invalid_token"/, 'challenged as an invalid token')
  t.match(JSON.parse(after.body), { code: 'KG_TOKEN_REVOKED' }, 'as revoked')
})

t.test('the client package imports in Node and both packages type-check in the app', async (t) => {
  const probe = `
import * as client from '@keygate/client'
import * as csrf from '@keygate/client/csrf-token'
import * as plugin from '@keygate/fastify-auth'
process.stdout.write(JSON.stringify({ client: Object.keys(client), csrf: Object.keys(csrf), plugin: Object.keys(plugin) }))
`
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', probe], { cwd: app })
  const names = JSON.parse(stdout) as Record<string, string[]>
  for (const name of [
    'KeygateClient',
    'KeygateHttpError',
    'KeygateLoggedOutError',
    'CSRF_COOKIE',
    'CSRF_HEADER',
  ]) {
    t.ok(names.client!.includes(name), `@keygate/client exports ${name}`)
  }
  t.same(
    names.csrf!.sort(),
    ['CSRF_COOKIE', 'CSRF_HEADER', 'cookieValue', 'csrfCookieStore'].sort(),
    '@keygate/client/csrf-token exports the CSRF names',
  )
  for (const name of ['auth', 'KeygateError', 'TokenVerifier', 'JwksCache', 'RevocationFeed']) {
    t.ok(names.plugin!.includes(name), `@keygate/fastify-auth exports ${name}`)
  }

  writeFileSync(
    join(app, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        lib: ['ES2022', 'DOM'],
        types: ['node'],
        strict: true,
        noEmit: true,
        skipLibCheck: false,
      },
      files: ['check.ts'],
    }),
  )
  writeFileSync(
    join(app, 'check.ts'),
    `import Fastify from 'fastify'
import { auth, type Identity, KeygateError } from '@keygate/fastify-auth'
import { KeygateClient, type SessionEvent } from '@keygate/client'
import { CSRF_HEADER } from '@keygate/client/csrf-token'

const app = Fastify()
await app.register(auth, { issuers: [{ issuer: 'http://127.0.0.1:4000', audiences: ['keygate-api'] }] })
app.get('/me', { config: { auth: { mode: 'required', scopes: ['profile'] } } }, (request) => {
  const who: Identity | null = request.identity
  return { subject: who?.subject }
})
const refused: KeygateError = new KeygateError('KG_TOKEN_REVOKED')
// @ts-expect-error not a code of the plugin
new KeygateError('KG_NO_SUCH_CODE')
const client = new KeygateClient()
client.subscribe((event: SessionEvent) => void event)
export const used = [refused.statusCode, CSRF_HEADER]
`,
  )
  const tsc = join(app, 'node_modules/typescript/bin/tsc')
  const typed = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: app }).then(
    () => '',
    (err: { stdout?: string }) => err.stdout ?? String(err),
  )
  t.equal(typed, '', "the packages' declarations type-check where they are installed")
})

/** The first line the process prints, as JSON (the app's port), or the failure it printed instead. */
function firstLine(child: ChildProcess): Promise<{ port: number }> {
  return new Promise((resolve, reject) => {
    let out = ''
    let err = ''
    child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()))
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const end = out.indexOf('\n')
      if (end !== -1) resolve(JSON.parse(out.slice(0, end)) as { port: number })
    })
    child.once('exit', (code) => reject(new Error(`the outside app exited (${code}):\n${out}${err}`)))
  })
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  await exited
}
