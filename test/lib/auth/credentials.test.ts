/**
 * lib/auth/credentials.ts: what a request carries. Requests are injected into a bare Fastify app whose one
 * route answers with what `extractCredentials` found, or the code it refused with.
 */
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import { extractCredentials } from '../../../lib/auth/credentials.js'
import { KeygateError } from '../../../lib/errors.js'

async function extractor(t: Test) {
  const app = Fastify()
  t.teardown(() => app.close())
  app.get('/*', async (request) => {
    try {
      const { token, assertion } = extractCredentials(request)
      return { token: token ?? null, assertion: assertion ?? null }
    } catch (err) {
      if (!(err instanceof KeygateError)) throw err
      return { refused: err.code, status: err.statusCode }
    }
  })
  return async (headers: Record<string, string | string[]>, url = '/x') =>
    (await app.inject({ url, headers })).json() as Record<string, unknown>
}

t.test('a bearer token from the Authorization header, the scheme in any case', async (t) => {
  const extract = await extractor(t)
  t.strictSame(await extract({}), { token: null, assertion: null }, 'nothing sent')
  for (const scheme of ['Bearer', 'bearer', 'BEARER', 'bEaReR']) {
    t.strictSame(await extract({ authorization: `${scheme} a.b.c` }), { token: 'a.b.c', assertion: null })
  }
  t.equal((await extract({ authorization: '  Bearer   a.b.c  ' })).token, 'a.b.c', 'surrounding spaces')
  t.equal((await extract({ authorization: 'Bearer abc-_~+/==' })).token, 'abc-_~+/==', 'any token68')
})

t.test('another scheme is no bearer token: the request simply has none', async (t) => {
  const extract = await extractor(t)
  for (const authorization of ['Basic dXNlcjpwYXNz', 'DPoP a.b.c', 'Bearerx a.b.c', 'Token']) {
    t.strictSame(await extract({ authorization }), { token: null, assertion: null }, authorization)
  }
})

t.test('a bearer credential spelt wrong is a 400 invalid_request', async (t) => {
  const extract = await extractor(t)
  for (const authorization of [
    'Bearer',
    'Bearer ',
    'Bearer two words',
    'Bearer\ta.b.c',
    'Bearer a=b',
    'Bearer "x"',
  ]) {
    t.strictSame(
      await extract({ authorization }),
      { refused: 'KG_INVALID_REQUEST', status: 400 },
      JSON.stringify(authorization),
    )
  }
})

t.test('one credential sent twice, or a token in the query, is refused', async (t) => {
  const extract = await extractor(t)
  t.strictSame(
    await extract({ authorization: ['Bearer a.b.c', 'Bearer a.b.c'] }),
    { refused: 'KG_TOKEN_MULTIPLE', status: 400 },
    'two Authorization headers, even equal',
  )
  t.strictSame(
    await extract({ 'x-keygate-assertion': ['a.b.c', 'd.e.f'] }),
    { refused: 'KG_TOKEN_MULTIPLE', status: 400 },
    'two assertions',
  )
  t.strictSame(
    await extract({}, '/x?access_token=a.b.c'),
    { refused: 'KG_TOKEN_IN_QUERY', status: 400 },
    'a query-string token',
  )
  t.strictSame(
    await extract({ authorization: 'Bearer a.b.c' }, '/x?a=1&access_token='),
    { refused: 'KG_TOKEN_IN_QUERY', status: 400 },
    'even empty, even beside a valid header',
  )
  t.strictSame(
    await extract({}, '/x?token=a.b.c'),
    { token: null, assertion: null },
    'other parameters are data',
  )
})

t.test('the gateway assertion is read beside the token; cookies never are', async (t) => {
  const extract = await extractor(t)
  t.strictSame(await extract({ authorization: 'Bearer a.b.c', 'x-keygate-assertion': 'd.e.f' }), {
    token: 'a.b.c',
    assertion: 'd.e.f',
  })
  t.strictSame(await extract({ 'x-keygate-assertion': '' }), { token: null, assertion: null }, 'empty: none')
  t.strictSame(
    await extract({ cookie: 'access_token=a.b.c; kg_access=a.b.c' }),
    { token: null, assertion: null },
    'a token in a cookie is not a credential',
  )
})
