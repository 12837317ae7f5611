/**
 * Concurrency caps at the gateway, over real sockets: one client (its subject, else its address) may have
 * GATEWAY_CLIENT_CONCURRENCY requests in progress, the next is refused at once (429 KG_CLIENT_BUSY) while
 * other clients go on; one route may hold GATEWAY_ROUTE_CONNECTIONS exchanges on its upstream (503
 * KG_ROUTE_BUSY over it) while another route to the same upstream keeps its room. Slots come back when
 * requests finish.
 */
import t, { type Test } from 'tap'
import { Agent, request } from 'undici'
import { startEchoUpstream, startGateway, startIssuer } from './helpers/servers.js'

/** An upstream whose `/hold` requests wait until `release()`; everything else is echoed. */
async function holdingUpstream(t: Test) {
  const upstream = await startEchoUpstream(t)
  let release!: () => void
  let released = new Promise<void>((resolve) => (release = resolve))
  let held = 0
  upstream.handle = async (req, reply) => {
    if (!req.url.startsWith('/hold')) return { url: req.url }
    held++
    await released
    return reply.send({ held: true })
  }
  return {
    upstream,
    get held() {
      return held
    },
    release() {
      release()
      released = new Promise<void>((resolve) => (release = resolve))
    },
  }
}

/** Waits until `check()` holds (the held requests reached the upstream). */
async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setTimeout(r, 10))
}

function agentFrom(t: Test, localAddress: string): Agent {
  const agent = new Agent({ localAddress, connections: 16 })
  t.teardown(() => agent.close())
  return agent
}

t.test('one client over its cap gets 429 at once; other clients and subjects go on', async (t) => {
  const issuer = await startIssuer(t)
  const hold = await holdingUpstream(t)
  const gw = await startGateway(t, {
    issuer,
    routes: {
      upstreams: { up: hold.upstream.url },
      routes: [
        { prefix: '/open', upstream: 'up', rewrite: '/', auth: { mode: 'none' } },
        { prefix: '/private', upstream: 'up', rewrite: '/', auth: { mode: 'required' } },
      ],
    },
    env: { GATEWAY_CLIENT_CONCURRENCY: '2', GATEWAY_RATE_LIMIT: '100000/1m' },
  })
  const local = agentFrom(t, '127.0.0.1')
  const other = agentFrom(t, '127.0.0.2')
  const token = await issuer.mint({ sub: 'alice' })
  const auth = { authorization: `Bearer ${token}` }

  const held = [1, 2].map(() => request(`${gw.url}/open/hold`, { dispatcher: local }))
  await until(() => hold.held === 2)
  const refused = await request(`${gw.url}/open/x`, { dispatcher: local })
  t.equal(refused.statusCode, 429)
  t.equal(refused.headers['retry-after'], '1')
  t.match(await refused.body.json(), { code: 'KG_CLIENT_BUSY', error: 'rate_limited' })

  const elsewhere = await request(`${gw.url}/open/x`, { dispatcher: other })
  t.equal(elsewhere.statusCode, 200, 'another address is another client')
  await elsewhere.body.dump()
  const subject = await request(`${gw.url}/private/x`, { dispatcher: local, headers: auth })
  t.equal(subject.statusCode, 200, 'a verified subject is counted apart from its address')
  await subject.body.dump()

  // The subject's own cap: two held, the third refused, from any address.
  const heldAsAlice = [1, 2].map(() =>
    request(`${gw.url}/private/hold`, { dispatcher: other, headers: auth }),
  )
  await until(() => hold.held === 4)
  const aliceRefused = await request(`${gw.url}/private/x`, { dispatcher: local, headers: auth })
  t.equal(aliceRefused.statusCode, 429)
  await aliceRefused.body.dump()

  hold.release()
  for (const r of await Promise.all([...held, ...heldAsAlice])) {
    t.equal(r.statusCode, 200)
    await r.body.dump()
  }
  const again = await request(`${gw.url}/open/x`, { dispatcher: local })
  t.equal(again.statusCode, 200, 'finished requests gave their slots back')
  await again.body.dump()
  const aliceAgain = await request(`${gw.url}/private/x`, { dispatcher: local, headers: auth })
  t.equal(aliceAgain.statusCode, 200)
  await aliceAgain.body.dump()
})

t.test(
  'one route cannot take every connection of its upstream: 503, the other route keeps room',
  async (t) => {
    const issuer = await startIssuer(t)
    const hold = await holdingUpstream(t)
    const gw = await startGateway(t, {
      issuer,
      routes: {
        upstreams: { up: hold.upstream.url },
        routes: [
          { prefix: '/login', upstream: 'up', rewrite: '/', auth: { mode: 'none' } },
          { prefix: '/keys', upstream: 'up', rewrite: '/', auth: { mode: 'none' } },
        ],
      },
      env: {
        GATEWAY_UPSTREAM_CONNECTIONS: '4',
        GATEWAY_ROUTE_CONNECTIONS: '3',
        GATEWAY_CLIENT_CONCURRENCY: '1',
        GATEWAY_RATE_LIMIT: '100000/1m',
      },
    })
    // Three clients (addresses) hold the route's three slots.
    const held = ['127.0.0.2', '127.0.0.3', '127.0.0.4'].map((address) =>
      request(`${gw.url}/login/hold`, { dispatcher: agentFrom(t, address) }),
    )
    await until(() => hold.held === 3)
    const busy = await request(`${gw.url}/login/x`, { dispatcher: agentFrom(t, '127.0.0.5') })
    t.equal(busy.statusCode, 503)
    t.equal(busy.headers['retry-after'], '1')
    t.match(await busy.body.json(), { code: 'KG_ROUTE_BUSY', error: 'temporarily_unavailable' })
    const keys = await request(`${gw.url}/keys/x`, { dispatcher: agentFrom(t, '127.0.0.6') })
    t.equal(keys.statusCode, 200, 'the other route to the same upstream still gets a connection')
    await keys.body.dump()

    hold.release()
    for (const r of await Promise.all(held)) {
      t.equal(r.statusCode, 200)
      await r.body.dump()
    }
    const after = await request(`${gw.url}/login/x`, { dispatcher: agentFrom(t, '127.0.0.5') })
    t.equal(after.statusCode, 200, 'finished exchanges gave their slots back')
    await after.body.dump()
  },
)

t.test('the limits must fit together, or the gateway does not start', async (t) => {
  const issuer = await startIssuer(t)
  await t.rejects(
    startGateway(t, { issuer, env: { GATEWAY_UPSTREAM_CONNECTIONS: '8', GATEWAY_CLIENT_CONCURRENCY: '8' } }),
    /GATEWAY_CLIENT_CONCURRENCY must be below GATEWAY_UPSTREAM_CONNECTIONS/,
  )
  await t.rejects(
    startGateway(t, {
      issuer,
      env: {
        GATEWAY_UPSTREAM_CONNECTIONS: '8',
        GATEWAY_ROUTE_CONNECTIONS: '9',
        GATEWAY_CLIENT_CONCURRENCY: '2',
      },
    }),
    /GATEWAY_ROUTE_CONNECTIONS must not exceed GATEWAY_UPSTREAM_CONNECTIONS/,
  )
  // A client waiting on a slow route sees nothing move on its connection: the idle timeout must be longer.
  await t.rejects(
    startGateway(t, {
      issuer,
      env: { HTTP_IDLE_TIMEOUT: '5s' },
      routes: { routes: [{ prefix: '/slow', upstream: 'issuer', auth: { mode: 'none' }, timeoutMs: 5_000 }] },
    }),
    /timeout of route \/slow .* must be below HTTP_IDLE_TIMEOUT/,
  )
})
