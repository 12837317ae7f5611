/**
 * Access tokens on their own (RFC 9068): what the header and claims hold, in which units, signed by the
 * active key and verifiable with the published JWKS alone; byte for byte the tokens jose's SignJWT made.
 */
import { join } from 'node:path'
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, SignJWT } from 'jose'
import t, { type Test } from 'tap'
import { AccessTokenMinter, DEFAULT_USER_SCOPE } from '../../../services/issuer/access-tokens.js'
import { KeyFile } from '../../../services/issuer/keys/key-file.js'
import { KeySet } from '../../../services/issuer/keys/key-set.js'
import { FakeClock, TEST_KEY_SCHEDULE, tempDir } from './fixtures.js'

const ISSUER = 'http://issuer.test'
const AUDIENCE = 'keygate-api'
const TTL_MS = 15 * 60_000
const SUBJECT = {
  userId: 'user-1',
  sessionId: 'session-1',
  clientId: 'keygate-web',
  roles: ['user', 'editor'],
}

async function minterFixture(t: Test) {
  // A start that is not a whole second, so the units of iat and exp show.
  const clock = new FakeClock(1_800_000_000_123)
  const keys = new KeySet({
    storage: new KeyFile(join(tempDir(t), 'keys')),
    schedule: TEST_KEY_SCHEDULE,
    now: clock.now,
  })
  await keys.load()
  const minter = new AccessTokenMinter({
    keys,
    issuer: ISSUER,
    audience: AUDIENCE,
    ttlMs: TTL_MS,
    now: clock.now,
  })
  const verify = (token: string) =>
    jwtVerify(token, createLocalJWKSet(keys.jwks()), {
      issuer: ISSUER,
      audience: AUDIENCE,
      typ: 'at+jwt',
      algorithms: ['RS256'],
      currentDate: new Date(clock.now()),
    })
  return { clock, keys, minter, verify }
}

t.test('an RFC 9068 token: header, claims and units, verifiable with the JWKS', async (t) => {
  const { clock, keys, minter, verify } = await minterFixture(t)
  const minted = await minter.mint(SUBJECT)
  t.same(decodeProtectedHeader(minted.token), { alg: 'RS256', typ: 'at+jwt', kid: keys.signingKey().kid })
  const { payload } = await verify(minted.token)
  t.same(
    Object.keys(payload).sort(),
    ['aud', 'client_id', 'exp', 'iat', 'iss', 'jti', 'roles', 'scope', 'sid', 'sub'],
    'nothing else (no e-mail)',
  )
  t.match(payload, {
    iss: ISSUER,
    aud: AUDIENCE,
    sub: 'user-1',
    sid: 'session-1',
    client_id: 'keygate-web',
    roles: ['user', 'editor'],
    scope: DEFAULT_USER_SCOPE,
    jti: minted.jti,
  })
  t.equal(payload.iat, clock.now() / 1000, 'iat keeps the milliseconds (a fractional NumericDate)')
  t.equal(payload.exp, Math.floor(clock.now() / 1000) + TTL_MS / 1000, 'exp: whole seconds, one lifetime on')
  t.equal(minted.expiresIn, TTL_MS / 1000, 'expires_in in seconds')
})

t.test('a given scope replaces the default; every token has its own jti', async (t) => {
  const { minter, verify } = await minterFixture(t)
  const a = await minter.mint({ ...SUBJECT, scope: 'profile' })
  const b = await minter.mint(SUBJECT)
  t.equal((await verify(a.token)).payload.scope, 'profile')
  t.not(a.jti, b.jti)
})

t.test('signed by whichever key is active when minted', async (t) => {
  const { keys, minter, verify } = await minterFixture(t)
  const first = keys.signingKey().kid
  const before = await minter.mint(SUBJECT)
  await keys.revoke(first)
  const after = await minter.mint(SUBJECT)
  t.not(keys.signingKey().kid, first)
  t.equal(decodeProtectedHeader(after.token).kid, keys.signingKey().kid)
  await t.resolves(verify(after.token))
  await t.rejects(
    verify(before.token),
    { code: 'ERR_JWKS_NO_MATCHING_KEY' },
    'the revoked key is unpublished',
  )
})

t.test(
  "byte for byte the token jose's SignJWT makes of the same claims (RS256 is deterministic)",
  async (t) => {
    const { keys, minter } = await minterFixture(t)
    const signer = keys.signingKey()
    const joseToken = (token: string) => {
      const { iss, sub, aud, iat, exp, jti, ...rest } = decodeJwt(token)
      return new SignJWT(rest)
        .setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: signer.kid })
        .setIssuer(iss!)
        .setSubject(sub!)
        .setAudience(aud!)
        .setIssuedAt(iat!)
        .setExpirationTime(exp!)
        .setJti(jti!)
        .sign(signer.key)
    }
    const user = await minter.mint(SUBJECT)
    t.equal(user.token, await joseToken(user.token), "a user's token")
    const exchanged = await minter.mintForClient({
      subject: 'user-1',
      clientId: 'orders',
      audience: ['keygate-profile', 'keygate-files'],
      scope: 'profile',
      sessionId: 'session-1',
      roles: ['user'],
      act: { sub: 'orders', act: { sub: 'gateway' } },
      notAfterS: 1_800_000_100,
    })
    t.equal(exchanged.token, await joseToken(exchanged.token), 'an exchanged token (act, two audiences)')
    t.equal(decodeJwt(exchanged.token).exp, 1_800_000_100, 'never past notAfterS')
  },
)
