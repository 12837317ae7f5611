/**
 * The hostile corpus against every entry point: the gateway, and profile, orders and files reached directly.
 * Every case must be refused with the right RFC 6750 answer (never a 5xx, an outbound request, a file read or
 * a hang); the positive controls must pass; random kids may cost at most one JWKS fetch per cooldown; and
 * afterwards valid tokens still work and no log holds a token.
 *
 * `npm test` runs the corpus at depth `fast`; `npm run test:hostile` (KEYGATE_HOSTILE=full) adds the longer
 * variant lists (weak secrets, kid flood).
 */
import t from 'tap'
import { startHostileWorld } from '../helpers/hostile-world.js'
import { rawRequest } from '../helpers/raw-http.js'
import { SecretLedger } from '../helpers/secret-ledger.js'
import {
  type ConfusionMaterial,
  controlCases,
  corpusContext,
  type Depth,
  FAMILIES,
  hostileCorpus,
  issuerMaterial,
} from './corpus/index.js'
import { problems, runCases } from './runner.js'

const depth: Depth = process.env.KEYGATE_HOSTILE === 'full' ? 'full' : 'fast'
/** Short, so the bound on JWKS fetches below is tight over a run of a few seconds. */
const JWKS_COOLDOWN_S = 2

t.test(`hostile tokens at the gateway and at every service (depth ${depth})`, async (t) => {
  const world = await startHostileWorld(t, { env: { JWKS_COOLDOWN: `${JWKS_COOLDOWN_S}s` } })
  const ledger = new SecretLedger()
  const bearer = (token: string) => [['authorization', `Bearer ${token}`]] as const

  // Genuine tokens of the other kinds keygate signs, from the running components.
  const before = await world.token()
  ledger.add('access token', before)
  const echoed = await rawRequest(world.gateway.url, { target: '/echo/required', headers: bearer(before) })
  const assertion = echoed.json?.headers['x-keygate-assertion'] as string
  t.match(assertion, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'the gateway attached an assertion to a proxied request')
  const files = world.services.files.url
  const upload = await rawRequest(files, {
    method: 'PUT',
    target: '/files/notes.txt',
    headers: [...bearer(before), ['content-type', 'text/plain']],
    body: 'notes',
  })
  t.equal(upload.status, 201, 'a file to link to')
  const link = await rawRequest(files, {
    method: 'POST',
    target: '/files/notes.txt/link',
    headers: bearer(before),
  })
  const downloadToken = String(link.json?.url).split('/').pop()!
  const material: ConfusionMaterial = {
    assertion,
    downloadToken,
    otherAudience: await world.token({ aud: 'other-api' }),
    gatewayKey: world.gatewayKey,
  }
  ledger.add('assertion', assertion)
  ledger.add('link', downloadToken)
  ledger.add('access token', material.otherAudience)

  const ctx = corpusContext(issuerMaterial(world.issuer), world.attacker, depth)
  const controls = controlCases(ctx)
  const controlOutcomes = await runCases(controls, world.entryPoints)
  t.strictSame(
    problems(controlOutcomes),
    [],
    `${controls.length} positive controls pass at every entry point`,
  )

  const corpus = hostileCorpus(ctx, material)
  const jwksBefore = world.issuer.jwksRequests
  const started = Date.now()
  const counts: string[] = []
  let requests = 0
  for (const family of FAMILIES) {
    const cases = corpus[family]
    for (const c of cases) ledger.add('hostile token', c.token)
    const outcomes = await runCases(cases, world.entryPoints)
    requests += outcomes.length
    counts.push(`${family}: ${cases.length} cases, ${outcomes.length} requests`)
    t.strictSame(problems(outcomes), [], `${family}: ${cases.length} cases refused as they must be`)
  }
  const elapsedS = (Date.now() - started) / 1000
  t.comment(`corpus (${depth}): ${counts.join('; ')}; ${requests} requests in ${elapsedS.toFixed(1)} s`)

  // Nothing went out, nothing was read, no unknown kid refetched more than once per cooldown per verifier.
  t.equal(world.attacker.connections, 0, "the attacker's server received no connection")
  t.same(world.attacker.requests, [], 'and no request')
  t.notOk(world.attacker.wasOpened(), 'nobody opened the FIFO a kid and an x5u named')
  const fetches = world.issuer.jwksRequests - jwksBefore
  // Four verifiers hold the issuer's keys (gateway, profile, orders, files).
  const bound = 4 * (1 + Math.ceil(elapsedS / JWKS_COOLDOWN_S))
  t.ok(
    fetches <= bound,
    `JWKS fetches during the corpus: ${fetches} ≤ ${bound} (cooldown ${JWKS_COOLDOWN_S} s)`,
  )

  // Everything still works: a token verified before the corpus, and a fresh one, at every entry point.
  const fresh = await world.token()
  ledger.add('access token', fresh)
  for (const entry of world.entryPoints) {
    for (const [which, token] of [
      ['before', before],
      ['fresh', fresh],
    ] as const) {
      const r = await rawRequest(entry.url, { target: entry.path, headers: bearer(token) })
      t.equal(r.status, 200, `${entry.name} still accepts a valid token (${which})`)
    }
    const health = await entry.app.operations.inject('/readyz')
    t.equal(health.statusCode, 200, `${entry.name} is ready`)
  }

  for (const [name, logs] of Object.entries(world.logs)) {
    t.strictSame(ledger.leaksIn(name, logs.lines), [], `${name}: no token in ${logs.lines.length} log lines`)
  }
})
