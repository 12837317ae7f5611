/**
 * Identity spoofing (ARCHITECTURE principle 3; OWASP's guidance on trusting headers set by a proxy): a client
 * sends the identity headers other proxies use (oauth2-proxy, Kong, Apache…), keygate's own `x-keygate-*`
 * ones and a forged assertion, in every spelling, through every kind of gateway route (auth required,
 * optional with and without a token, none) and directly to every service. What reaches an upstream is only
 * what the gateway derived from a verified token; a service reached directly believes nothing it cannot
 * verify.
 */
import { generateKeyPairSync, randomUUID } from 'node:crypto'
import { jwtVerify } from 'jose'
import t from 'tap'
import { DEFAULT_STRIP_HEADERS } from '../../gateway/config.js'
import { ASSERTION_TYPE } from '../../lib/identity/constants.js'
import { startHostileWorld } from '../helpers/hostile-world.js'
import { type RawHeader, rawRequest } from '../helpers/raw-http.js'
import { SecretLedger } from '../helpers/secret-ledger.js'
import { signJws } from './corpus/index.js'

/** What every forged header claims: the attacker's chosen identity. */
const MALLORY = 'mallory-the-admin'

t.test('forged identity headers never reach an upstream, nor convince a service', async (t) => {
  const world = await startHostileWorld(t)
  const token = await world.token({ sub: 'alice' })
  const g = world.gatewayKey
  const now = Math.floor(Date.now() / 1000)
  const forgedAssertion = signJws(
    { alg: 'EdDSA', typ: ASSERTION_TYPE, kid: g.kid },
    {
      iss: g.issuer,
      aud: 'echo',
      sub: MALLORY,
      roles: ['admin'],
      iat: now,
      exp: now + 60,
      jti: randomUUID(),
    },
    'EdDSA',
    generateKeyPairSync('ed25519').privateKey,
  )
  const keygateHeaders = [
    'x-keygate-subject',
    'x-keygate-roles',
    'x-keygate-scopes',
    'x-keygate-claim-sid',
    'x-keygate-claim-email',
    'x-keygate-tenant',
  ]
  const forged: RawHeader[] = [
    ...DEFAULT_STRIP_HEADERS.map((name): RawHeader => [name, MALLORY]),
    ...keygateHeaders.map((name): RawHeader => [name, MALLORY]),
    ['X-KeyGate-Subject', MALLORY],
    ['X-USER-ID', MALLORY],
    ['x-keygate-subject', `${MALLORY}-twice`],
    ['x-keygate-assertion', forgedAssertion],
  ]
  const bearer: RawHeader = ['authorization', `Bearer ${token}`]

  /** What the echo upstream received for a request through the gateway. */
  const through = async (path: string, headers: RawHeader[]) => {
    const r = await rawRequest(world.gateway.url, { target: path, headers })
    t.equal(r.status, 200, `${path} answered`)
    return (r.json?.headers ?? {}) as Record<string, string>
  }
  const forgedValues = (headers: Record<string, string>) =>
    Object.entries(headers).filter(([, v]) => String(v).includes(MALLORY) || String(v) === forgedAssertion)
  const identityHeaders = (headers: Record<string, string>) =>
    Object.keys(headers).filter(
      (h) => h.startsWith('x-keygate-') || DEFAULT_STRIP_HEADERS.includes(h) || h === 'authorization',
    )

  // Required and optional-with-token routes: only the gateway's identity, derived from alice's token.
  for (const [path, kind] of [
    ['/echo/required', 'required'],
    ['/echo/optional', 'optional, with a token'],
  ] as const) {
    const received = await through(path, [...forged, bearer])
    t.strictSame(forgedValues(received), [], `${kind}: no forged value reached the upstream`)
    t.equal(received['x-keygate-subject'], 'alice', `${kind}: the subject header is the verified one`)
    t.equal(received.authorization, `Bearer ${token}`, `${kind}: the verified token is relayed`)
    const { payload, protectedHeader } = await jwtVerify(received['x-keygate-assertion']!, g.publicKey, {
      issuer: g.issuer,
      audience: 'echo',
      typ: ASSERTION_TYPE,
    })
    t.equal(payload.sub, 'alice', `${kind}: the assertion is the gateway's own, about alice`)
    t.equal(protectedHeader.kid, g.kid, `${kind}: signed with the key the gateway publishes`)
  }

  // Optional without a token, and none: nothing identity-like at all.
  for (const [path, headers, kind] of [
    ['/echo/optional', forged, 'optional, anonymous'],
    ['/echo/none', [...forged, bearer], 'none, with a token'],
    ['/echo/none', forged, 'none, anonymous'],
  ] as const) {
    const received = await through(path, [...headers])
    t.strictSame(identityHeaders(received), [], `${kind}: no identity header reached the upstream`)
  }

  // Connection-listed headers are hop-by-hop for the client's own headers, never for the gateway's.
  const listed = await through('/echo/required', [
    ...forged,
    bearer,
    ['connection', 'x-keygate-assertion, x-keygate-subject, authorization'],
  ])
  t.ok(
    listed['x-keygate-assertion'] && listed.authorization,
    'Connection cannot strip what the gateway attaches',
  )
  t.strictSame(forgedValues(listed), [], 'nor smuggle a forged value through')

  // Through the gateway to the real services: the identity is alice's whatever the headers say.
  const me = await rawRequest(world.gateway.url, { target: '/api/profile/me', headers: [...forged, bearer] })
  t.equal(me.json?.sub, 'alice', 'profile through the gateway sees alice')
  const order = await rawRequest(world.gateway.url, {
    method: 'POST',
    target: '/api/orders',
    headers: [...forged, bearer, ['content-type', 'application/json']],
    body: JSON.stringify({ item: 'lamp', quantity: 1 }),
  })
  t.equal(order.status, 201, 'orders through the gateway created an order')
  t.equal(order.json?.owner, 'alice', 'owned by alice')
  const viaNone = await rawRequest(world.gateway.url, {
    method: 'PUT',
    target: '/api/files/download',
    headers: [...forged, bearer, ['content-type', 'text/plain']],
    body: 'x',
  })
  t.equal(viaNone.status, 401, 'a route without auth carries no identity to a service that needs one')

  // Directly at each service: forged headers alone prove nothing; beside a valid token, they change nothing.
  const mallory = await world.token({ sub: MALLORY })
  const files = world.services.files.url
  await rawRequest(files, {
    method: 'PUT',
    target: '/files/mallory.txt',
    headers: [
      ['authorization', `Bearer ${mallory}`],
      ['content-type', 'text/plain'],
    ],
    body: 'secret',
  })
  const withoutAssertion = forged.filter(([name]) => name !== 'x-keygate-assertion')
  for (const service of Object.values(world.services)) {
    let r = await rawRequest(service.url, { target: service.path, headers: withoutAssertion })
    t.equal(
      `${r.status} ${r.json?.code}`,
      '401 KG_TOKEN_MISSING',
      `${service.name}: forged plain headers are no credential`,
    )
    r = await rawRequest(service.url, { target: service.path, headers: forged })
    t.equal(
      `${r.status} ${r.json?.error}`,
      '401 invalid_token',
      `${service.name}: a forged assertion is refused`,
    )
    r = await rawRequest(service.url, { target: service.path, headers: [...withoutAssertion, bearer] })
    t.equal(r.status, 200, `${service.name}: a valid token beside forged headers is accepted as itself`)
    if (service.name === 'profile') t.equal(r.json?.sub, 'alice', 'profile: the caller is alice')
    if (service.name === 'files') {
      t.notOk(JSON.stringify(r.json).includes('mallory.txt'), "files: alice does not see mallory's files")
    }
    if (service.name === 'orders') {
      t.ok(
        ((r.json?.orders ?? [null]) as Array<{ owner: string }>).every((o) => o.owner === 'alice'),
        'orders: only alice’s',
      )
    }
  }

  const ledger = new SecretLedger()
  for (const secret of [token, mallory]) ledger.add('access token', secret)
  ledger.add('hostile token', forgedAssertion)
  for (const [name, logs] of Object.entries(world.logs)) {
    t.strictSame(ledger.leaksIn(name, logs.lines), [], `${name}: no token in its logs`)
  }
})
