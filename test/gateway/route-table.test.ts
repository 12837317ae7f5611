import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { defaultRouteFile, type RouteFile, RouteTableError } from '../../gateway/route-file.js'
import { loadRouteTable, RouteTable } from '../../gateway/route-table.js'

const known = {
  issuer: 'http://127.0.0.1:4000',
  profile: 'http://127.0.0.1:4101',
  orders: 'http://127.0.0.1:4102',
  files: 'http://127.0.0.1:4103',
}
const defaults = { timeoutMs: 10_000, rateLimit: { max: 600, windowMs: 60_000 } }
const compile = (file: unknown) => RouteTable.compile(file, known, defaults, 'test table')

t.test('the default table routes and rewrites as documented', async (t) => {
  const table = compile(defaultRouteFile())
  const target = (path: string) => {
    const route = table.match(path)
    return route && `${route.upstream.name} ${route.targetPath(path)}`
  }
  t.equal(target('/api/profile/me'), 'profile /me')
  t.equal(target('/api/profile'), 'profile /')
  t.equal(target('/api/orders'), 'orders /orders')
  t.equal(target('/api/orders/7'), 'orders /orders/7')
  t.equal(target('/api/files/x'), 'files /files/x')
  t.equal(target('/api/admin/keys'), 'issuer /admin/keys')
  t.equal(target('/auth/login'), 'issuer /auth/login')
  t.equal(target('/.well-known/jwks.json'), 'issuer /.well-known/jwks.json')
  t.equal(target('/api'), undefined)
  t.equal(target('/api/profilex'), undefined, 'a prefix matches whole segments only')
  t.equal(target('/'), undefined)
  t.equal(table.upstreams.get('profile')?.origin, known.profile)

  const admin = table.match('/api/admin')!
  t.same(admin.auth, { mode: 'required', roles: ['admin'], sensitive: true })
  t.match(admin.forward, { token: true, assertion: true, subject: false })
  const auth = table.match('/auth/logout-all')!
  t.match(auth.forward, { token: true }, '/auth relays Authorization (logout-all takes a Bearer token)')
  t.match(table.match('/.well-known/x')!.forward, { token: false })
  for (const path of ['/api/profile', '/api/orders', '/api/files', '/api/files/download']) {
    t.match(table.match(path)!.forward, { token: false, assertion: true }, `${path}: no raw token crosses`)
  }
  t.equal(admin.authenticates, true, 'a required route authenticates its callers')
  t.equal(auth.authenticates, false, 'an auth-none route authenticates nobody')
  t.equal(admin.timeoutMs, 10_000)
  t.same(admin.rateLimit, defaults.rateLimit)
})

t.test('longest prefix wins, by segments', async (t) => {
  const table = compile({
    upstreams: { a: 'http://a.test', b: 'http://b.test/base/' },
    routes: [
      { prefix: '/', upstream: 'a', auth: { mode: 'none' } },
      { prefix: '/api', upstream: 'a', auth: { mode: 'none' } },
      { prefix: '/api/v1/things', upstream: 'b', rewrite: '/t', auth: { mode: 'none' } },
      { prefix: '/api/v1', upstream: 'b', auth: { mode: 'none' } },
    ],
  } satisfies RouteFile)
  t.equal(table.match('/api/v1/things/3')?.prefix, '/api/v1/things')
  t.equal(table.match('/api/v1/things/')?.prefix, '/api/v1/things')
  t.equal(table.match('/api/v1/thingsx')?.prefix, '/api/v1')
  t.equal(table.match('/api/v2')?.prefix, '/api')
  t.equal(table.match('/apiv1')?.prefix, '/')
  t.equal(table.match('/')?.prefix, '/')
  const things = table.match('/api/v1/things')!
  t.equal(things.targetPath('/api/v1/things'), '/base/t', 'the upstream base path comes first')
  t.equal(things.targetPath('/api/v1/things/3'), '/base/t/3')
  t.equal(table.match('/x/y')!.targetPath('/x/y'), '/x/y', 'no rewrite: the path as is')
})

t.test('a thousand routes match in one lookup per segment', async (t) => {
  const routes = Array.from({ length: 1000 }, (_, i) => ({
    prefix: `/svc${i}/api`,
    upstream: 'issuer',
    rewrite: '/',
    auth: { mode: 'none' as const },
  }))
  const table = compile({ routes })
  t.equal(table.match('/svc999/api/items/1')?.prefix, '/svc999/api')
  t.equal(table.match('/svc999/apix'), undefined)
  t.equal(table.match('/svc1000/api'), undefined)
})

t.test('a table that cannot be compiled fails with an error naming the entry', async (t) => {
  const route = { prefix: '/x', upstream: 'issuer', auth: { mode: 'none' } }
  const bad = (file: unknown, pattern: RegExp, what: string) => t.throws(() => compile(file), pattern, what)
  bad({ routes: [route, route] }, /routes\[1\] \(prefix \/x\): duplicates routes\[0\]/, 'duplicate')
  bad(
    { routes: [{ ...route, upstream: 'nowhere' }] },
    /routes\[0\] \(prefix \/x\): unknown upstream "nowhere"/,
    'upstream',
  )
  bad(
    { routes: [{ ...route, auth: { mode: 'none', roles: ['admin'] } }] },
    /routes\[0\].*need mode required or optional/,
    'roles on none',
  )
  bad(
    { routes: [{ ...route, forward: { claims: ['Org', 'org'] } }] },
    /x-keygate-claim-org twice/,
    'claim collision',
  )
  bad(
    { upstreams: { issuer: 'ftp://x' }, routes: [route] },
    /upstream "issuer" must be an http\(s\) URL/,
    'URL',
  )
  bad(
    { routes: [{ ...route, auth: { mode: 'sometimes' } }] },
    /test table: routes\[0\] \(prefix \/x\): auth\.mode: must be one of/,
    'schema errors first (route-file.ts)',
  )
  t.throws(() => compile({ routes: [route, route] }), RouteTableError)
})

t.test('a route file is read from disk, and a broken one named', async (t) => {
  const dir = t.testdir()
  const file = join(dir, 'routes.json')
  writeFileSync(
    file,
    JSON.stringify({ routes: [{ prefix: '/x', upstream: 'orders', auth: { mode: 'none' } }] }),
  )
  t.equal(loadRouteTable(file, known, defaults).match('/x/1')?.upstream.origin, known.orders)
  writeFileSync(file, '{ not json')
  t.throws(
    () => loadRouteTable(file, known, defaults),
    new RegExp(`GATEWAY_ROUTES_FILE ${file}: cannot read`),
  )
  t.equal(loadRouteTable(undefined, known, defaults).routes.length, defaultRouteFile().routes.length)
})
