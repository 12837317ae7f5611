import t from 'tap'
import { request } from 'undici'
import { startEchoGateway } from './helpers/servers.js'

t.test('a route’s limit answers 429 with Retry-After, per subject or per address', async (t) => {
  const { issuer, gw } = await startEchoGateway(t, {
    routes: [
      { prefix: '/public', upstream: 'up', auth: { mode: 'none' }, rateLimit: { max: 2, windowMs: 60_000 } },
      {
        prefix: '/private',
        upstream: 'up',
        auth: { mode: 'required' },
        rateLimit: { max: 2, windowMs: 60_000 },
      },
      { prefix: '/roomy', upstream: 'up', auth: { mode: 'none' } },
    ],
    env: { GATEWAY_RATE_LIMIT: '3/1h' },
  })
  const status = async (path: string, token?: string) => {
    const res = await request(`${gw.url}${path}`, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
    })
    const body = (await res.body.json()) as { code?: string }
    return { status: res.statusCode, retryAfter: res.headers['retry-after'], code: body.code }
  }

  t.equal((await status('/public/a')).status, 200)
  t.equal((await status('/public/b')).status, 200)
  const limited = await status('/public/c')
  t.equal(limited.status, 429, 'the third request from one address in the window is refused')
  t.equal(limited.code, 'KG_RATE_LIMITED')
  t.ok(Number(limited.retryAfter) > 0 && Number(limited.retryAfter) <= 60, 'Retry-After in seconds')
  t.equal((await status('/roomy/a')).status, 200, 'another route counts apart')

  const alice = await issuer.mint({ sub: 'alice' })
  const bob = await issuer.mint({ sub: 'bob' })
  t.equal((await status('/private/1', alice)).status, 200)
  t.equal(
    (await status('/private/2', await issuer.mint({ sub: 'alice' }))).status,
    200,
    'a subject, whatever its token',
  )
  t.equal((await status('/private/3', alice)).status, 429)
  t.equal((await status('/private/1', bob)).status, 200, 'subjects from one address count apart')

  t.equal((await status('/roomy/b')).status, 200)
  t.equal((await status('/roomy/c')).status, 200)
  t.equal((await status('/roomy/d')).status, 429, 'routes without a limit get GATEWAY_RATE_LIMIT')
  const metrics = (await gw.app.operations.inject('/metrics')).body
  t.match(metrics, /keygate_gateway_requests_total\{route="\/public",outcome="KG_RATE_LIMITED"[^}]*\} 1/)
})
