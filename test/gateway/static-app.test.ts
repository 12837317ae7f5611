import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify, { type FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { registerErrorHandling } from '../../lib/errors.js'
import type { RouteTable } from '../../gateway/route-table.js'
import { DEMO_CONTENT_SECURITY_POLICY, staticApp } from '../../gateway/static-app.js'

/** A built client/dist in miniature. */
function builtClient(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'kg-static-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(join(dir, 'demo'))
  writeFileSync(join(dir, 'demo', 'index.html'), '<!doctype html><title>demo</title>')
  writeFileSync(join(dir, 'demo', 'main.js'), 'import "../index.js"')
  writeFileSync(join(dir, 'index.js'), 'export {}')
  writeFileSync(join(dir, 'index.d.ts'), 'export {}')
  writeFileSync(join(dir, 'notes.txt'), 'not an asset')
  return dir
}

const tableClaiming = (claimed: string[]): RouteTable =>
  ({
    match: (path: string) =>
      claimed.some((p) => path === p || path.startsWith(p === '/' ? '/' : `${p}/`))
        ? { prefix: '/' }
        : undefined,
  }) as unknown as RouteTable

async function gateway(t: Test, options: { dir?: string; claimed?: string[] }): Promise<FastifyInstance> {
  const app = Fastify()
  registerErrorHandling(app)
  await app.register(staticApp, { table: tableClaiming(options.claimed ?? []), dir: options.dir })
  app.all('/*', async (_request, reply) => reply.code(404).send({ code: 'PROXIED' }))
  t.teardown(() => app.close())
  return app
}

t.test('/ is the page, with a strict CSP; /app/* the built files', async (t) => {
  const app = await gateway(t, { dir: builtClient(t) })
  const page = await app.inject('/')
  t.equal(page.statusCode, 200)
  t.equal(page.headers['content-type'], 'text/html; charset=utf-8')
  t.equal(page.headers['content-security-policy'], DEMO_CONTENT_SECURITY_POLICY)
  t.match(DEMO_CONTENT_SECURITY_POLICY, /require-trusted-types-for 'script'/)
  t.equal(page.headers['x-frame-options'], 'DENY')
  t.equal(page.headers['x-content-type-options'], 'nosniff')
  t.equal(page.headers['cache-control'], 'no-cache')
  t.match(page.body, /<title>demo<\/title>/)

  const script = await app.inject('/app/demo/main.js')
  t.equal(script.statusCode, 200)
  t.equal(script.headers['content-type'], 'text/javascript; charset=utf-8')
  t.equal((await app.inject('/app/index.js')).statusCode, 200)

  const again = await app.inject({ url: '/app/index.js', headers: { 'if-none-match': script.headers.etag } })
  t.equal(again.statusCode, 200, 'another file’s etag does not match')
  const etag = (await app.inject('/app/index.js')).headers.etag as string
  const cached = await app.inject({ url: '/app/index.js', headers: { 'if-none-match': etag } })
  t.equal(cached.statusCode, 304)
  t.equal(cached.body, '')
})

t.test('only the built files, by exact name', async (t) => {
  const app = await gateway(t, { dir: builtClient(t) })
  for (const url of [
    '/app/index.d.ts',
    '/app/notes.txt',
    '/app/',
    '/app/nope.js',
    '/app/../package.json',
    '/app/demo/../../package.json',
    '/app/%2e%2e/package.json',
  ]) {
    const res = await app.inject(url)
    t.equal(res.statusCode, 404, url)
  }
  t.equal(
    (await app.inject({ method: 'POST', url: '/' })).json().code,
    'PROXIED',
    'other methods are proxied',
  )
})

t.test('nothing is served when the route table claims / or /app, or nothing is built', async (t) => {
  for (const claimed of [['/'], ['/app']]) {
    const app = await gateway(t, { dir: builtClient(t), claimed })
    t.equal((await app.inject('/')).json().code, 'PROXIED', `${claimed}: / is proxied`)
    t.equal((await app.inject('/app/index.js')).json().code, 'PROXIED', `${claimed}: /app is proxied`)
  }
  const unbuilt = await gateway(t, { dir: join(tmpdir(), 'kg-static-does-not-exist') })
  t.equal((await unbuilt.inject('/')).json().code, 'PROXIED')
})
