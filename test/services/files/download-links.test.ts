import { createHmac } from 'node:crypto'
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import { type Identity, TokenVerifier } from '../../../lib/auth/index.js'
import {
  DOWNLOAD_LINK_AUDIENCE,
  DOWNLOAD_LINK_TYPE,
  registerDownloadLinks,
} from '../../../services/files/download-links.js'
import { b64url, signHmac } from '../../helpers/jws.js'
import { FakeClock } from '../../helpers/services.js'
import { startTokenIssuer } from '../../helpers/token-issuer.js'

const SECRET = 'a-test-secret-of-at-least-32-characters!'
const ISSUER = 'http://127.0.0.1:4103'

async function links(t: Test, clock = new FakeClock(), ttlMs = 60_000) {
  const app = Fastify()
  t.teardown(() => app.close())
  return registerDownloadLinks(app, { secret: SECRET, issuer: ISSUER, ttlMs, now: clock.now })
}

/** The identity a link is issued to: alice, through her access token `at-1` of session `s-1`. */
const ALICE: Identity = {
  subject: 'alice',
  principal: 'alice',
  issuer: 'http://issuer.test',
  clientId: 'web',
  sessionId: 's-1',
  roles: [],
  scopes: [],
  tokenId: 'at-1',
  issuedAt: 1_700_000_000.123,
  expiresAt: 1_700_000_900,
  keyId: 'k-1',
  claims: {},
  source: 'token',
  token: 'a.b.c',
}

const decode = (part: string) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8'))

t.test('a link token: HS256, its own typ, bound to owner, file and version', async (t) => {
  const clock = new FakeClock()
  const l = await links(t, clock)
  const { token, expiresIn } = l.issue(ALICE, { name: 'a.txt', id: 'v1' })
  t.equal(expiresIn, 60)
  const [header, payload] = token.split('.')
  t.same(decode(header!), { alg: 'HS256', typ: DOWNLOAD_LINK_TYPE })
  const claims = decode(payload!)
  t.match(claims, { iss: ISSUER, aud: DOWNLOAD_LINK_AUDIENCE, sub: 'alice', file: 'a.txt', fid: 'v1' })
  t.equal(claims.exp - claims.iat, 60)
  t.match(claims.jti, /^[0-9a-f-]{36}$/)
  t.not(l.issue(ALICE, { name: 'a.txt', id: 'v1' }).token, token, 'every link is a new one')

  t.match(claims, { at_iss: 'http://issuer.test', at_sub: 'alice', at_jti: 'at-1', at_sid: 's-1' })
  t.match(l.verify(token), {
    owner: 'alice',
    issuedTo: {
      issuer: 'http://issuer.test',
      subject: 'alice',
      sessionId: 's-1',
      tokenId: 'at-1',
      keyId: 'k-1',
    },
    file: 'a.txt',
    fileId: 'v1',
    jti: claims.jti,
    expiresAt: claims.exp * 1000,
  })
  clock.advance(59_000)
  t.ok(l.verify(token), 'valid until it expires')
  clock.advance(1_000)
  t.throws(() => l.verify(token), { code: 'KG_LINK_GONE', statusCode: 410 }, 'expired: gone')
})

t.test('anything that is not our link is invalid (401)', async (t) => {
  const l = await links(t)
  const { token } = l.issue(ALICE, { name: 'a.txt', id: 'v1' })
  const [h, p, s] = token.split('.') as [string, string, string]
  const claims = decode(p)
  const sign = (header: object, payload: object, secret = SECRET) => signHmac(header, payload, secret)
  const header = { alg: 'HS256', typ: DOWNLOAD_LINK_TYPE }
  const forged: Array<[string, string]> = [
    ['garbage', 'not-a-token'],
    ['empty segments', '..'],
    ['a flipped signature byte', `${h}.${p}.${s.slice(0, -2)}${s.at(-2) === 'A' ? 'B' : 'A'}${s.at(-1)}`],
    ['a changed file', `${h}.${b64url(JSON.stringify({ ...claims, file: 'b.txt' }))}.${s}`],
    ['another secret', sign(header, claims, 'another-secret-of-at-least-32-characters')],
    ['alg none', `${b64url(JSON.stringify({ alg: 'none', typ: DOWNLOAD_LINK_TYPE }))}.${p}.`],
    ['another typ', sign({ alg: 'HS256', typ: 'at+jwt' }, claims)],
    ['no typ', sign({ alg: 'HS256' }, claims)],
    ['another audience', sign(header, { ...claims, aud: 'keygate-api' })],
    ['another issuer', sign(header, { ...claims, iss: 'http://elsewhere' })],
    ['no jti', sign(header, { ...claims, jti: undefined })],
    ['no file version', sign(header, { ...claims, fid: undefined })],
    ['no issuing token', sign(header, { ...claims, at_jti: undefined })],
    ['a numeric subject', sign(header, { ...claims, sub: 7 })],
    [
      'HS512',
      `${b64url(JSON.stringify({ alg: 'HS512', typ: DOWNLOAD_LINK_TYPE }))}.${p}.${b64url(createHmac('sha512', SECRET).update(`${h}.${p}`).digest())}`,
    ],
    ['too long', `${h}.${p}.${'A'.repeat(3000)}`],
  ]
  for (const [what, bad] of forged)
    t.throws(() => l.verify(bad), { code: 'KG_LINK_INVALID', statusCode: 401 }, what)
  t.ok(l.verify(sign(header, claims)), 'the same claims signed right do verify')
})

t.test('a link token is never an access token', async (t) => {
  const issuer = await startTokenIssuer()
  t.teardown(() => issuer.close())
  const l = await links(t)
  const { token } = l.issue(ALICE, { name: 'a.txt', id: 'v1' })
  const jwks = {
    getKey: () => undefined,
    ready: async () => {},
    usable: () => true,
    onKeysRemoved: () => {},
    close: async () => {},
  }
  const verifier = new TokenVerifier({
    profile: 'access_token',
    issuers: [
      // Even a verifier that (wrongly) trusted files as an issuer refuses it: wrong type, no RSA key.
      {
        issuer: ISSUER,
        audiences: [DOWNLOAD_LINK_AUDIENCE],
        algorithms: ['RS256'],
        types: ['at+jwt'],
        clockToleranceS: 0,
        keySource: jwks,
      },
      {
        issuer: issuer.url,
        audiences: ['keygate-api'],
        algorithms: ['RS256'],
        types: ['at+jwt'],
        clockToleranceS: 0,
        keySource: jwks,
      },
    ],
  })
  await t.rejects(verifier.verify(token), { code: 'KG_TOKEN_ALG_NOT_ALLOWED' })
  const strict = new TokenVerifier({
    profile: 'access_token',
    issuers: [
      {
        issuer: issuer.url,
        audiences: ['keygate-api'],
        algorithms: ['RS256'],
        types: ['at+jwt'],
        clockToleranceS: 0,
        keySource: jwks,
      },
    ],
  })
  await t.rejects(strict.verify(token), { code: 'KG_TOKEN_ISSUER_UNKNOWN' })
  const accessToken = await issuer.mint()
  t.throws(() => l.verify(accessToken), { code: 'KG_LINK_INVALID' }, 'and an access token is no link')
})
