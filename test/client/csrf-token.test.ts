import t from 'tap'
import { CSRF_COOKIE, CSRF_HEADER, cookieValue, csrfCookieStore } from '../../client/csrf-token.js'

t.test('cookieValue finds one cookie in document.cookie', async (t) => {
  t.equal(cookieValue('a=1; kg_csrf=abc-123; b=2', 'kg_csrf'), 'abc-123')
  t.equal(cookieValue('kg_csrf=abc', 'kg_csrf'), 'abc')
  t.equal(cookieValue('x_kg_csrf=no; kg_csrfx=no', 'kg_csrf'), null, 'whole names only')
  t.equal(cookieValue('kg_csrf=a%2Fb', 'kg_csrf'), 'a/b', 'percent-decoded, as @fastify/cookie encodes')
  t.equal(cookieValue('kg_csrf=%E0%A4%A', 'kg_csrf'), null, 'a malformed escape is no token')
  t.equal(cookieValue('kg_csrf=', 'kg_csrf'), null)
  t.equal(cookieValue('', 'kg_csrf'), null)
})

t.test('the cookie store reads kg_csrf and leaves writing to the issuer', async (t) => {
  let cookies = 'kg_csrf=one'
  const store = csrfCookieStore(() => cookies)
  t.equal(store.read(), 'one')
  store.write('two')
  t.equal(cookies, 'kg_csrf=one')
  cookies = ''
  t.equal(store.read(), null, 'read afresh every time')
})

t.test('the CSRF names are the wire contract the issuer imports from here', async (t) => {
  t.equal(CSRF_COOKIE, 'kg_csrf')
  t.equal(CSRF_HEADER, 'x-csrf-token', 'lower case, as Node presents request headers')
})
