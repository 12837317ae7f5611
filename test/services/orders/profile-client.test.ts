import Fastify, { type RouteHandlerMethod } from 'fastify'
import t, { type Test } from 'tap'
import type { Identity } from '../../../lib/auth/index.js'
import { ProfileClient } from '../../../services/orders/profile-client.js'
import { captureLogs } from '../../helpers/logs.js'
import { listenOnFreePort } from '../../helpers/services.js'

const identity = (overrides: Partial<Identity> = {}): Identity => ({
  subject: 'alice',
  principal: 'alice',
  issuer: 'http://issuer',
  clientId: 'web',
  sessionId: 's',
  roles: [],
  scopes: [],
  tokenId: 'jti-1',
  issuedAt: 0,
  expiresAt: 0,
  keyId: 'k',
  claims: {},
  source: 'token',
  token: 'header.payload.signature',
  ...overrides,
})

/** A profile stand-in answering `/me` with whatever the test says. */
async function standIn(t: Test, answer: RouteHandlerMethod) {
  const app = Fastify({ forceCloseConnections: true })
  const received: Array<Record<string, unknown>> = []
  app.addHook('onRequest', async (request) => {
    received.push({ ...request.headers })
  })
  app.get('/me', answer)
  app.get('/healthz', async () => ({ status: 'ok' }))
  return { url: await listenOnFreePort(t, app), received }
}

async function client(t: Test, url: string, timeoutMs = 2_000) {
  const c = new ProfileClient({ url, timeoutMs })
  t.teardown(() => c.close())
  return c
}

const context = () => ({ requestId: 'req-1', log: captureLogs().logger })

t.test('relays the caller’s token and the request id, and reads the display name', async (t) => {
  const profile = await standIn(t, async () => ({
    sub: 'alice',
    principal: 'alice',
    profile: { displayName: 'Alice' },
  }))
  const c = await client(t, profile.url)
  t.equal(await c.displayNameOf(identity(), context()), 'Alice')
  t.equal(profile.received[0]!.authorization, 'Bearer header.payload.signature')
  t.equal(profile.received[0]!['x-request-id'], 'req-1')
  t.notOk(
    Object.keys(profile.received[0]!).some((h) => h.startsWith('x-keygate-')),
    'no identity header of its own',
  )
})

t.test('an assertion-only caller: nothing relayable, profile is not called', async (t) => {
  const profile = await standIn(t, async () => ({
    sub: 'alice',
    principal: 'alice',
    profile: { displayName: 'Alice' },
  }))
  const c = await client(t, profile.url)
  await t.rejects(c.displayNameOf(identity({ source: 'assertion', token: undefined }), context()), {
    code: 'KG_PROFILE_UNAVAILABLE',
    statusCode: 502,
    details: { reason: 'no_relayable_identity' },
  })
  t.equal(profile.received.length, 0)
})

t.test('every failure is a 502 with its reason', async (t) => {
  const cases: Array<[string, RouteHandlerMethod, string]> = [
    ['profile refuses', async (_req, reply) => reply.code(401).send({ code: 'KG_TOKEN_MISSING' }), 'refused'],
    ['profile fails', async (_req, reply) => reply.code(500).send({}), 'refused'],
    ['not JSON', async (_req, reply) => reply.type('application/json').send('{nope'), 'bad_answer'],
    [
      'about someone else',
      async () => ({ sub: 'mallory', principal: 'mallory', profile: { displayName: 'M' } }),
      'bad_answer',
    ],
    ['no profile object', async () => ({ sub: 'alice', principal: 'alice' }), 'bad_answer'],
    [
      'a name of the wrong type',
      async () => ({ sub: 'alice', principal: 'alice', profile: { displayName: 7 } }),
      'bad_answer',
    ],
    [
      'too large',
      async () => ({ sub: 'alice', principal: 'alice', profile: { displayName: 'x'.repeat(100_000) } }),
      'bad_answer',
    ],
  ]
  for (const [what, answer, reason] of cases) {
    const profile = await standIn(t, answer)
    const c = await client(t, profile.url)
    await t.rejects(
      c.displayNameOf(identity(), context()),
      { code: 'KG_PROFILE_UNAVAILABLE', details: { reason } },
      what,
    )
  }
})

t.test('down or slow: 502 within the timeout', async (t) => {
  const down = await client(t, 'http://127.0.0.1:1')
  await t.rejects(down.displayNameOf(identity(), context()), {
    code: 'KG_PROFILE_UNAVAILABLE',
    details: { reason: 'unreachable' },
  })
  t.equal(await down.reachable(), false)

  const slow = await standIn(t, () => new Promise(() => {}))
  const c = await client(t, slow.url, 300)
  const started = Date.now()
  await t.rejects(c.displayNameOf(identity(), context()), {
    code: 'KG_PROFILE_UNAVAILABLE',
    details: { reason: 'timeout' },
  })
  const took = Date.now() - started
  t.ok(took >= 250 && took < 1_500, `gave up after the timeout (${took} ms)`)
  t.equal(await c.reachable(), true, 'it does answer /healthz')
})
