/**
 * keygate in front of other identity providers: an Auth0-shaped (PS256) and a Keycloak-shaped (ES256) issuer,
 * served by their own process, trusted beside keygate's own. Mapped roles and `scp` scopes work, a foreign
 * `admin` grants nothing unless allowed, and routes may name the issuers they accept.
 */
import t from 'tap'
import { request } from 'undici'
import { buildGateway } from '../../gateway/app.js'
import { loadGatewayConfig } from '../../gateway/config.js'
import { createLogger } from '../../lib/server.js'
import { startForeignIdp } from '../helpers/foreign-idp.js'
import { type Echo, startEchoGateway, startIssuer } from './helpers/servers.js'

t.test('Auth0- and Keycloak-shaped tokens through the gateway', async (t) => {
  const idp = await startForeignIdp(t)
  const own = await startIssuer(t)
  const { gw } = await startEchoGateway(t, {
    issuer: own,
    routes: [
      {
        prefix: '/any',
        upstream: 'svc',
        auth: { mode: 'required' },
        forward: {
          subject: true,
          roles: true,
          scopes: true,
          claims: [
            'https://keygate.test/roles',
            { claim: 'https://keygate.test/roles', header: 'idp-roles' },
          ],
        },
      },
      { prefix: '/admin', upstream: 'svc', auth: { mode: 'required', roles: ['admin'] } },
      { prefix: '/profile', upstream: 'svc', auth: { mode: 'required', scopes: ['profile'] } },
      { prefix: '/own-only', upstream: 'svc', auth: { mode: 'required', issuers: [own.url] } },
    ],
    env: {
      TRUSTED_ISSUERS: JSON.stringify([
        {
          issuer: idp.auth0.issuer,
          jwksUri: idp.auth0.jwksUri,
          audiences: ['keygate-api'],
          algorithms: ['PS256'],
          profile: 'jwt',
          claims: { roles: 'https://keygate.test/roles' },
        },
        {
          // No jwksUri: found through the issuer's discovery document.
          issuer: idp.keycloak.issuer,
          audiences: ['keygate-api'],
          algorithms: ['ES256'],
          profile: 'jwt',
          claims: { roles: 'realm_access.roles' },
          grants: { roles: ['admin', 'user'] },
        },
      ]),
    },
  })
  const call = async (path: string, token: string) => {
    const res = await request(`${gw.url}${path}`, { headers: { authorization: `Bearer ${token}` } })
    const body = (await res.body.json()) as Echo & { code?: string }
    return { status: res.statusCode, body }
  }

  // Auth0: PS256, typ JWT, no jti, no client_id (azp), roles under a namespaced claim.
  const auth0 = await idp.auth0.mint({ 'https://keygate.test/roles': ['user', 'admin'] })
  let r = await call('/any/x', auth0)
  t.equal(r.status, 200, 'an Auth0-shaped token is accepted')
  t.equal(r.body.headers['x-keygate-subject'], 'auth0|alice')
  t.equal(r.body.headers['x-keygate-roles'], 'user', 'mapped roles, without the foreign admin')
  t.equal(r.body.headers['x-keygate-scopes'], 'openid profile')
  t.equal(
    r.body.headers['x-keygate-claim-https---keygate.test-roles'],
    '["user","admin"]',
    'a URL-named claim is forwarded as signed, under a header-safe name',
  )
  t.equal(
    r.body.headers['x-keygate-claim-idp-roles'],
    '["user","admin"]',
    'or under the name the route gives',
  )
  r = await call('/admin/x', auth0)
  t.equal(r.status, 403, 'a foreign admin role grants nothing unless allowed')
  t.equal(r.body.code, 'KG_INSUFFICIENT_SCOPE')
  r = await call('/own-only/x', auth0)
  t.equal(r.status, 403, 'a route naming its issuers refuses the others')
  t.equal(r.body.code, 'KG_TOKEN_ISSUER_NOT_ACCEPTED')
  r = await call('/own-only/x', await own.mint())
  t.equal(r.status, 200, 'and accepts its own')

  t.equal((await call('/any/x', await idp.auth0.mint({}, { typ: null }))).status, 200, 'typ may be absent')
  r = await call('/any/x', await idp.auth0.mint({}, { typ: 'at+jwt' }))
  t.equal(r.status, 200, 'or at+jwt')
  r = await call('/any/x', await idp.auth0.mint({}, { typ: 'kg-assertion+jwt' }))
  t.equal(r.body.code, 'KG_TOKEN_TYPE_INVALID', 'but never another type')
  r = await call('/any/x', await idp.auth0.mint({ aud: null }))
  t.equal(r.body.code, 'KG_TOKEN_CLAIM_INVALID', 'the audience stays required')
  r = await call('/any/x', await idp.auth0.mint({ aud: 'another-api' }))
  t.equal(r.body.code, 'KG_TOKEN_AUDIENCE_INVALID')
  r = await call('/any/x', await idp.auth0.mint({ 'https://keygate.test/roles': 'admin' }))
  t.equal(r.body.code, 'KG_TOKEN_CLAIM_INVALID', 'a mapped claim of the wrong shape is refused, not guessed')

  // Keycloak: ES256, typ JWT, azp, realm_access.roles; this issuer is trusted for admin.
  const keycloak = await idp.keycloak.mint({ realm_access: { roles: ['user', 'admin', 'offline_access'] } })
  r = await call('/any/x', keycloak)
  t.equal(r.status, 200, 'a Keycloak-shaped token is accepted')
  t.equal(r.body.headers['x-keygate-roles'], 'user,admin', 'only the roles it is trusted to grant')
  t.equal((await call('/admin/x', keycloak)).status, 200, 'an issuer allowed to grant admin does')

  // scp instead of scope (Azure AD, Okta).
  const scp = await idp.keycloak.mint({ scope: null, scp: ['profile', 'orders'] })
  r = await call('/profile/x', scp)
  t.equal(r.status, 200, 'an scp array is read as scopes')
  r = await call('/profile/x', await idp.keycloak.mint({ scope: 'email' }))
  t.equal(r.status, 403, 'and a missing scope is still missing')

  // A token of one foreign issuer signed with the other's algorithm is refused before any key is used.
  r = await call('/any/x', await idp.keycloak.mint({ iss: idp.auth0.issuer }))
  t.equal(r.body.code, 'KG_TOKEN_ALG_NOT_ALLOWED')
})

t.test('another issuer down at start: keygate’s users served, every component ready', async (t) => {
  const idp = await startForeignIdp(t)
  const foreign = await idp.keycloak.mint()
  await idp.stop()
  const trusted = JSON.stringify([
    { issuer: idp.keycloak.issuer, audiences: ['keygate-api'], algorithms: ['ES256'], profile: 'jwt' },
  ])
  const { issuer: own, gw } = await startEchoGateway(t, {
    routes: [{ prefix: '/any', upstream: 'svc', auth: { mode: 'required' } }],
    env: { TRUSTED_ISSUERS: trusted },
  })
  const ready = await gw.app.operations.inject('/readyz')
  t.equal(ready.statusCode, 200, 'the gateway is ready: keygate’s own issuer is the one it requires')
  const detail = ready.json() as { checks: Record<string, unknown> }
  t.match(
    detail.checks[`issuer ${idp.keycloak.issuer}`],
    /signing keys not loaded/,
    'the other issuer is reported by name',
  )
  const metrics = await gw.app.operations.inject('/metrics')
  t.match(
    metrics.body,
    `keygate_auth_issuer_keys_usable{issuer="${idp.keycloak.issuer}",required="false",component="gateway"} 0`,
    'and in metrics',
  )

  let res = await request(`${gw.url}/any/x`, { headers: { authorization: `Bearer ${await own.mint()}` } })
  t.equal(res.statusCode, 200, 'keygate’s users are served')
  await res.body.dump()
  res = await request(`${gw.url}/any/x`, { headers: { authorization: `Bearer ${foreign}` } })
  t.equal(res.statusCode, 503, 'the other issuer’s tokens wait')
  t.ok(res.headers['retry-after'], 'with Retry-After')
  t.match(await res.body.json(), { code: 'KG_KEYS_STALE' })

  const gateway = await buildGateway({
    config: loadGatewayConfig({
      LOG_LEVEL: 'silent',
      KEYS_DIR: t.testdir(),
      ISSUER_URL: own.url,
      REVOCATION_FEED: 'off',
      TRUSTED_ISSUERS: JSON.stringify([{ ...JSON.parse(trusted)[0], required: true }]),
    }),
    logger: createLogger({ name: 'gateway', level: 'silent' }),
  })
  t.teardown(() => gateway.close())
  await gateway.ready()
  const held = await gateway.operations.inject('/readyz')
  t.equal(held.statusCode, 503, 'an issuer marked required holds readiness back')
  t.match(held.json(), { checks: { keys: new RegExp(`not loaded: .*${idp.keycloak.issuer}`) } })
})

t.test('a refused JWKS key is named in readiness detail and counted in metrics', async (t) => {
  const own = await startIssuer(t)
  own.keys.push({
    ...own.keys[0]!,
    kid: 'weak',
    publicJwk: { kty: 'RSA', kid: 'weak', n: 'AQAB', e: 'AQAB' },
  })
  const { gw } = await startEchoGateway(t, {
    issuer: own,
    routes: [{ prefix: '/any', upstream: 'svc', auth: { mode: 'required' } }],
  })
  const ready = await gw.app.operations.inject('/readyz')
  t.equal(ready.statusCode, 200, 'the usable keys serve: still ready')
  t.match(ready.json().checks['refused-keys'], new RegExp(`${own.url}: weak \\(`))
  const metrics = await gw.app.operations.inject('/metrics')
  t.match(metrics.body, `keygate_jwks_keys_refused{issuer="${own.url}",component="gateway"} 1`)
})

t.test(
  'keys without kid or alg: the sole key for the alg verifies, several are never tried in turn',
  async (t) => {
    const idp = await startForeignIdp(t)
    const own = await startIssuer(t)
    const plain = { audiences: ['keygate-api'], profile: 'jwt' }
    const { gw } = await startEchoGateway(t, {
      issuer: own,
      routes: [{ prefix: '/any', upstream: 'svc', auth: { mode: 'required' }, forward: { subject: true } }],
      env: {
        TRUSTED_ISSUERS: JSON.stringify([
          // Two algorithms allowed, and the key has no alg: its type (RSA) fits exactly one of them.
          { ...plain, issuer: idp.bare.issuer, jwksUri: idp.bare.jwksUri, algorithms: ['RS256', 'ES256'] },
          { ...plain, issuer: idp.twin.issuer, jwksUri: idp.twin.jwksUri, algorithms: ['RS256'] },
        ]),
      },
    })
    const call = async (token: string) => {
      const res = await request(`${gw.url}/any/x`, { headers: { authorization: `Bearer ${token}` } })
      const body = (await res.body.json()) as Echo & { code?: string }
      return { status: res.statusCode, body, challenge: res.headers['www-authenticate'] }
    }

    const bare = await idp.bare.mint()
    t.notMatch(JSON.parse(Buffer.from(bare.split('.')[0]!, 'base64url').toString()), { kid: String })
    let r = await call(bare)
    t.equal(r.status, 200, 'a token without kid verifies with the one key (no kid, no alg) for its alg')
    t.equal(r.body.headers['x-keygate-subject'], 'plain-alice')
    r = await call(await idp.twin.mint({ iss: idp.bare.issuer }, { kid: null }))
    t.equal(r.body.code, 'KG_TOKEN_SIGNATURE_INVALID', 'the sole key is checked, not trusted blindly')

    t.equal((await call(await idp.twin.mint())).status, 200, 'a token naming its kid verifies beside others')
    r = await call(await idp.twin.mint({}, { kid: null }))
    t.equal(r.status, 401, 'without kid, two keys for its alg: refused, neither is tried')
    t.equal(r.body.code, 'KG_TOKEN_KEY_UNKNOWN')
    t.match(r.challenge, /error="invalid_token"/)

    const ready = await gw.app.operations.inject('/readyz')
    t.equal(ready.statusCode, 200)
    t.match(
      ready.json().checks['refused-keys'],
      new RegExp(`${idp.twin.issuer}: \\(no kid\\) \\S+ \\(no kid and not the only RS256 key\\)`),
      'the key without kid beside others is refused, by name',
    )
    const metrics = await gw.app.operations.inject('/metrics')
    t.match(metrics.body, `keygate_jwks_keys_refused{issuer="${idp.twin.issuer}",component="gateway"} 1`)
    t.match(metrics.body, `keygate_jwks_keys_refused{issuer="${idp.bare.issuer}",component="gateway"} 0`)
  },
)
