/**
 * The hostile corpus against the issuer itself: its own Bearer routes (the admin API) answer each case as
 * every other entry point does, and its OAuth endpoints, which take tokens in a form rather than a header,
 * never accept one: introspection says `{ active: false }`, token exchange `invalid_grant`, revocation 200
 * and records nothing. Tokens are signed with the real issuer's key where a case must be valid but for one
 * thing, and no token reaches a log.
 */
import { createPublicKey, KeyObject } from 'node:crypto'
import t from 'tap'
import { startAttacker } from '../helpers/attacker.js'
import type { EntryPoint } from '../helpers/hostile-world.js'
import { rawRequest } from '../helpers/raw-http.js'
import { SecretLedger } from '../helpers/secret-ledger.js'
import { basic, listeningIssuer, registerClient } from '../services/issuer/oauth/helpers.js'
import { algCases } from './corpus/alg.js'
import { claimCases } from './corpus/claims.js'
import { formatCases } from './corpus/format.js'
import { corpusContext, type HostileCase } from './corpus/index.js'
import { keyCases } from './corpus/keys.js'
import { problems, runCases } from './runner.js'

const GATEWAY = 'kgc_gateway'
const GATEWAY_SECRET = 'a gateway secret of some length'
const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token'

t.test('hostile tokens at the issuer: its Bearer routes and its OAuth endpoints', async (t) => {
  const f = await listeningIssuer(
    t,
    { OAUTH_INTROSPECTION_CLIENTS: GATEWAY, OAUTH_RATE_LIMIT: '100000/1m' },
    [GATEWAY, GATEWAY_SECRET],
  )
  const url = f.base
  const exchanger = await registerClient(f, {
    name: 'exchanger',
    grant_types: [EXCHANGE],
    scopes: ['profile', 'orders'],
    audiences: ['keygate-profile'],
  })
  const attacker = await startAttacker()
  t.teardown(() => attacker.close())

  const signing = f.app.issuer.keys.signingKey()
  const privateKey = KeyObject.from(signing.key)
  const publicJwk = f.app.issuer.keys.jwks().keys.find((k) => k.kid === signing.kid) as Record<
    string,
    unknown
  >
  const ctx = corpusContext(
    {
      url,
      audience: 'keygate-api',
      kid: signing.kid,
      privateKey,
      publicKey: createPublicKey(privateKey),
      publicJwk,
    },
    attacker,
    'fast',
  )
  // The issuer's clock at the instant the corpus was built: cases a few seconds either side of a limit
  // mean the same to the issuer however long the run takes.
  f.clock.advance(ctx.now * 1000 - f.clock.now())
  // Families about tokens themselves; confusion and assertions are about the gateway and services.
  const cases = [...algCases(ctx), ...keyCases(ctx), ...claimCases(ctx), ...formatCases(ctx)].filter(
    (c) => c.only === undefined && c.expect.kind !== 'accepted',
  )
  const ledger = new SecretLedger()
  for (const c of cases) if (c.token) ledger.add('hostile token', c.token)

  // The admin API: a control with the admin role passes; every case is refused as RFC 6750 says.
  const entry: EntryPoint = { name: 'issuer', url, path: '/admin/keys', app: f.app }
  const admin = ctx.signed(ctx.header(), ctx.claims({ roles: ['admin'] }))
  ledger.add('access token', admin)
  const control = await rawRequest(url, {
    target: '/admin/keys',
    headers: [['authorization', `Bearer ${admin}`]],
  })
  t.equal(control.status, 200, 'a valid admin token signed by the issuer passes')
  t.strictSame(problems(await runCases(cases, [entry])), [], `${cases.length} cases refused at the admin API`)

  // The OAuth endpoints: only tokens a verifier would refuse for what they are (not for their audience,
  // which an authorization server answers for whatever it is) and sent as the token itself.
  const refusedTokens = cases.filter(
    (c): c is HostileCase & { token: string } =>
      c.token !== undefined &&
      c.headers === undefined &&
      c.query === undefined &&
      (c.expect.kind === 'too_large' ||
        (c.expect.kind === 'invalid_token' &&
          ![c.expect.code ?? []].flat().includes('KG_TOKEN_AUDIENCE_INVALID'))),
  )
  const form = (fields: Record<string, string>) => ({
    method: 'POST',
    headers: [['content-type', 'application/x-www-form-urlencoded']] as const,
    body: new URLSearchParams(fields).toString(),
  })
  const post = (target: string, fields: Record<string, string>, auth: Record<string, string>) =>
    rawRequest(url, {
      target,
      ...form(fields),
      headers: [...form(fields).headers, ['authorization', auth.authorization!]],
    })
  const cursor = await f.app.issuer.store.latestRevocationCursor()
  const wrong: string[] = []
  const valid = ctx.valid()
  ledger.add('access token', valid)
  const activeControl = await post('/oauth/introspect', { token: valid }, basic(GATEWAY, GATEWAY_SECRET))
  t.equal(activeControl.json?.active, true, 'introspection control: a valid token is active')
  for (const c of refusedTokens) {
    const introspected = await post('/oauth/introspect', { token: c.token }, basic(GATEWAY, GATEWAY_SECRET))
    if (
      introspected.status !== 200 ||
      introspected.json?.active !== false ||
      Object.keys(introspected.json).length !== 1
    ) {
      wrong.push(
        `${c.name}: introspection answered ${introspected.status} ${introspected.body.slice(0, 120)}`,
      )
    }
    const exchanged = await post(
      '/oauth/token',
      { grant_type: EXCHANGE, subject_token: c.token, subject_token_type: ACCESS_TOKEN },
      basic(exchanger.client_id, exchanger.client_secret!),
    )
    if (exchanged.status !== 400 || exchanged.json?.error !== 'invalid_grant') {
      wrong.push(`${c.name}: token exchange answered ${exchanged.status} ${exchanged.body.slice(0, 120)}`)
    }
    const revoked = await post(
      '/oauth/revoke',
      { token: c.token },
      basic(exchanger.client_id, exchanger.client_secret!),
    )
    if (revoked.status !== 200) wrong.push(`${c.name}: revocation answered ${revoked.status}`)
  }
  t.strictSame(wrong, [], `${refusedTokens.length} hostile tokens: inactive, invalid_grant, revocation 200`)
  t.equal(await f.app.issuer.store.latestRevocationCursor(), cursor, 'no hostile token caused a revocation')
  t.equal(attacker.connections, 0, "the attacker's server received no connection")
  t.strictSame(ledger.leaksIn('issuer', f.logs.lines), [], 'no token in the logs')
})
