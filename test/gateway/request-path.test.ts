import t from 'tap'
import { parseRequestPath } from '../../gateway/request-path.js'

t.test('plain paths pass as they are, with the query apart', async (t) => {
  t.same(parseRequestPath('/api/profile/me'), { path: '/api/profile/me', query: '' })
  t.same(parseRequestPath('/api/orders?page=2&x=%2F'), { path: '/api/orders', query: '?page=2&x=%2F' })
  t.same(parseRequestPath('/'), { path: '/', query: '' })
})

t.test('other spellings of a path become the path they mean', async (t) => {
  const path = (url: string) => parseRequestPath(url).path
  t.equal(path('/api/%61dmin'), '/api/admin', 'escaped unreserved characters are decoded')
  t.equal(path('/api/x/../admin'), '/api/admin', 'dot-dot segments resolve')
  t.equal(path('/api/%2e%2e/admin'), '/admin', 'escaped dots too')
  t.equal(path('/api/./admin/.'), '/api/admin/')
  t.equal(path('//api///admin'), '/api/admin', 'repeated slashes merge')
  t.equal(path('/../../etc'), '/etc', 'never above the root')
  t.equal(path('/files/a%2fb'), '/files/a%2Fb', 'an escaped slash stays escaped (upper-cased)')
  t.equal(path('/.well-known/jwks.json'), '/.well-known/jwks.json')
  t.equal(path('/a/'), '/a/', 'a trailing slash is kept')
})

t.test('ambiguous paths are refused', async (t) => {
  for (const url of ['/api\\admin', '/api/%zz', '/api/%4', 'api/x', '*']) {
    t.throws(() => parseRequestPath(url), { code: 'KG_INVALID_REQUEST', statusCode: 400 }, url)
  }
})
