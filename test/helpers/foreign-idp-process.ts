/**
 * A second, independent identity provider, run as its own process by foreign-idp.ts: two issuers shaped like
 * the IdPs keygate is put in front of, each with its own keys and JWKS, on 127.0.0.1 and a free port.
 *
 * - `/auth0/`: Auth0-shaped (issuer URL with a trailing slash), PS256, roles in the namespaced claim
 *   `https://keygate.test/roles`, `azp`, `scope` string, no `jti`.
 * - `/realms/demo`: Keycloak-shaped, ES256, `typ: JWT`, roles in `realm_access.roles`, `azp`, no `client_id`.
 * - `/bare/`: RS256, its one key published without `kid` and `alg`, tokens signed without `kid`.
 * - `/twin/`: RS256, two keys with `kid` (the first signs) and a third without; tokens carry `kid` unless
 *   the test removes it.
 *
 * `POST <issuer>/mint` signs whatever claims and header the test sends over the defaults (a test IdP: it
 * listens on loopback only and lives as long as the test). Prints `{"url": …}` once listening.
 */
import Fastify from 'fastify'
import { exportJWK, generateKeyPair, type JWTHeaderParameters, SignJWT } from 'jose'

interface Realm {
  path: string
  alg: 'PS256' | 'ES256' | 'RS256'
  kid: string
  defaults: (issuer: string, now: number) => Record<string, unknown>
  header: Record<string, unknown>
  /** Publish the signing key without `kid` and `alg`, and sign without `kid`. */
  bare?: boolean
  /** More keys of the same algorithm published beside the signing one: `kid`s, `null` for none. */
  others?: Array<string | null>
}

const plainToken = (iss: string, now: number) => ({
  iss,
  sub: 'plain-alice',
  aud: 'keygate-api',
  azp: 'plain-client',
  iat: now,
  exp: now + 600,
  scope: 'profile',
})

const REALMS: Realm[] = [
  {
    path: '/auth0/',
    alg: 'PS256',
    kid: 'auth0-key-1',
    header: { typ: 'JWT' },
    defaults: (iss, now) => ({
      iss,
      sub: 'auth0|alice',
      aud: ['keygate-api', `${iss}userinfo`],
      azp: 'spa-client',
      iat: now,
      exp: now + 600,
      scope: 'openid profile',
      'https://keygate.test/roles': ['user'],
    }),
  },
  {
    path: '/realms/demo',
    alg: 'ES256',
    kid: 'kc-key-1',
    header: { typ: 'JWT' },
    defaults: (iss, now) => ({
      iss,
      sub: 'f0c1b6a2-kc-alice',
      aud: 'keygate-api',
      azp: 'web-app',
      typ: 'Bearer',
      iat: now,
      exp: now + 600,
      jti: `kc-${now}-${Math.random().toString(36).slice(2)}`,
      scope: 'profile email',
      realm_access: { roles: ['user', 'offline_access'] },
    }),
  },
  { path: '/bare/', alg: 'RS256', kid: '', header: { typ: 'JWT' }, bare: true, defaults: plainToken },
  {
    path: '/twin/',
    alg: 'RS256',
    kid: 'twin-1',
    header: { typ: 'JWT' },
    others: ['twin-2', null],
    defaults: plainToken,
  },
]

const app = Fastify({ logger: false })
let base = ''
for (const realm of REALMS) {
  const { privateKey, publicKey } = await generateKeyPair(realm.alg)
  const jwk = realm.bare
    ? await exportJWK(publicKey)
    : { ...(await exportJWK(publicKey)), kid: realm.kid, alg: realm.alg, use: 'sig' }
  const others = await Promise.all(
    (realm.others ?? []).map(async (kid) => {
      const other = await exportJWK((await generateKeyPair(realm.alg)).publicKey)
      return kid === null ? other : { ...other, kid, alg: realm.alg }
    }),
  )
  const issuer = () => `${base}${realm.path}`
  const at = (suffix: string) => `${realm.path.replace(/\/$/, '')}/${suffix}`
  app.get(at('jwks'), async () => ({ keys: [jwk, ...others] }))
  app.get(at('.well-known/openid-configuration'), async () => ({
    issuer: issuer(),
    jwks_uri: `${base}${at('jwks')}`,
  }))
  app.post<{ Body: { claims?: Record<string, unknown>; header?: Record<string, unknown> } }>(
    at('mint'),
    async (request) => {
      const now = Math.floor(Date.now() / 1000)
      const payload = { ...realm.defaults(issuer(), now), ...request.body?.claims }
      for (const [k, v] of Object.entries(payload)) if (v === null) delete payload[k]
      const header: Record<string, unknown> = {
        alg: realm.alg,
        kid: realm.bare ? null : realm.kid,
        ...realm.header,
        ...request.body?.header,
      }
      for (const [k, v] of Object.entries(header)) if (v === null) delete header[k]
      return {
        token: await new SignJWT(payload).setProtectedHeader(header as JWTHeaderParameters).sign(privateKey),
      }
    },
  )
}
await app.listen({ host: '127.0.0.1', port: 0 })
const address = app.server.address()
if (address === null || typeof address === 'string') throw new Error('no address')
base = `http://127.0.0.1:${address.port}`
process.stdout.write(`${JSON.stringify({ url: base })}\n`)
const stop = () => void app.close().then(() => process.exit(0))
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
