import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import {
  defaultRouteFile,
  readRouteFile,
  RouteTableError,
  validateRouteFile,
} from '../../gateway/route-file.js'

t.test('the built-in table is a valid route file', async (t) => {
  t.same(validateRouteFile(defaultRouteFile(), 'default table'), defaultRouteFile())
})

t.test('a bad file fails with an error naming the entry and the field', async (t) => {
  const route = { prefix: '/x', upstream: 'issuer', auth: { mode: 'none' } }
  const bad = (file: unknown, pattern: RegExp, what: string) =>
    t.throws(() => validateRouteFile(file, 'test table'), pattern, what)
  bad(
    { routes: [route, { ...route, prefix: '/y', auth: { mode: 'sometimes' } }] },
    /^test table: routes\[1\] \(prefix \/y\): auth\.mode: must be one of required, optional, none$/,
    'mode',
  )
  bad(
    { routes: [{ ...route, prefix: 'x' }] },
    /routes\[0\] \(prefix x\): prefix: prefix must be a normalised absolute path/,
    'relative prefix',
  )
  bad({ routes: [{ ...route, prefix: '/x/' }] }, /routes\[0\].*prefix must be/, 'trailing slash')
  bad({ routes: [{ ...route, prefix: '/a/../b' }] }, /routes\[0\].*prefix must be/, 'dot segment')
  bad({ routes: [{ ...route, prefix: '/a%2Fb' }] }, /routes\[0\].*prefix must be/, 'an escape')
  bad({ routes: [{ ...route, rewrite: 'v1' }] }, /routes\[0\].*rewrite: rewrite must be/, 'rewrite')
  bad(
    { routes: [{ ...route, colour: 'red' }] },
    /routes\[0\] \(prefix \/x\): colour: unexpected property/,
    'unknown field',
  )
  bad(
    { routes: [{ ...route, forward: { claims: ['a b'] } }] },
    /routes\[0\].*forward\.claims\.0: a claim must be a dot path/,
    'claim path',
  )
  bad({ routes: [{ ...route, timeoutMs: 0 }] }, /routes\[0\].*timeoutMs/, 'timeout')
  bad({ routes: [{ ...route, rateLimit: { max: 5 } }] }, /routes\[0\].*rateLimit/, 'rate limit')
  bad({ routes: [{ upstream: 'issuer', auth: { mode: 'none' } }] }, /routes\[0\]: prefix/, 'no prefix')
  bad({ routes: 'all' }, /test table: routes: /, 'routes not an array')
  bad({ upstreams: { a: 1 }, routes: [] }, /test table: upstreams\.a: /, 'upstream not a string')
  t.throws(() => validateRouteFile({}, 'x'), RouteTableError)
})

t.test('a route file is read as JSON, and an unreadable one named', async (t) => {
  const dir = t.testdir({ 'good.json': '{"routes":[]}', 'bad.json': '{ not json' })
  t.same(readRouteFile(join(dir, 'good.json')), { routes: [] })
  t.throws(() => readRouteFile(join(dir, 'bad.json')), /GATEWAY_ROUTES_FILE .*bad\.json: cannot read/)
  t.throws(() => readRouteFile(join(dir, 'missing.json')), /missing\.json: cannot read/)
  writeFileSync(join(dir, 'good.json'), '[]')
  t.same(readRouteFile(join(dir, 'good.json')), [], 'the shape is validateRouteFile’s business')
})
