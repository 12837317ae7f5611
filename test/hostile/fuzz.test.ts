/**
 * Property-based fuzzing (fast-check) of the token parser (lib/auth/compact.ts) and of the gateway's request
 * handling: random and mutated tokens, headers, paths, methods and bodies. The parser only ever returns a
 * JSON-object header and payload or throws its own two errors; the gateway only ever answers 2xx–4xx (2xx for
 * a valid token), stays healthy, and no promise is left rejected.
 *
 * Run counts: `npm test` runs a few thousand cases; `npm run test:hostile` (KEYGATE_HOSTILE=full) tens of
 * thousands. FUZZ_SEED replays a failure that fast-check reported.
 */
import { generateKeyPairSync } from 'node:crypto'
import fc from 'fast-check'
import t from 'tap'
import { DEFAULT_MAX_TOKEN_BYTES, hasDuplicateMembers, parseCompactJws } from '../../lib/auth/compact.js'
import { KeygateError } from '../../lib/errors.js'
import { startHostileWorld } from '../helpers/hostile-world.js'
import { b64url } from '../helpers/jws.js'
import { type RawHeader, rawRequest } from '../helpers/raw-http.js'
import { corpusContext, issuerMaterial, signJws } from './corpus/index.js'

const full = process.env.KEYGATE_HOSTILE === 'full'
/** Runs per property: parser properties are microseconds each, gateway ones a few milliseconds. */
const RUNS = full
  ? { parser: 100_000, duplicates: 20_000, gateway: 20_000, socket: 3_000 }
  : { parser: 5_000, duplicates: 3_000, gateway: 2_000, socket: 200 }
const seed = process.env.FUZZ_SEED === undefined ? {} : { seed: Number(process.env.FUZZ_SEED) }
const params = (numRuns: number) => ({ numRuns, ...seed })

const PARSER_ERRORS = new Set(['KG_TOKEN_MALFORMED', 'KG_TOKEN_TOO_LARGE'])
const B64URL_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

/** What a base64url segment may be: random bytes, random JSON, or random text in (and out of) the alphabet. */
const segment = fc.oneof(
  fc.uint8Array({ maxLength: 64 }).map((b) => b64url(Buffer.from(b))),
  fc.json({ maxDepth: 3 }).map((j) => b64url(j)),
  fc.jsonValue({ maxDepth: 2 }).map((v) => b64url(JSON.stringify({ alg: 'RS256', typ: 'at+jwt', v }))),
  fc.string({ unit: fc.constantFrom(...B64URL_CHARS, '=', '+', '/', ' ', '.'), maxLength: 40 }),
)
const jwtLike = fc.array(segment, { minLength: 1, maxLength: 6 }).map((parts) => parts.join('.'))

/** Parses, and checks that the only ways out are a JSON-object header and payload, or the parser's errors. */
function parsesCleanly(token: string, maxBytes = DEFAULT_MAX_TOKEN_BYTES): boolean {
  try {
    const parsed = parseCompactJws(token, maxBytes)
    const isObject = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v)
    return isObject(parsed.header) && isObject(parsed.payload) && parsed.signature.length > 0
  } catch (err) {
    return err instanceof KeygateError && PARSER_ERRORS.has(err.code)
  }
}

t.test('the token parser returns objects or throws its own errors, whatever it is given', async (t) => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 400 }), (s) => parsesCleanly(s)),
    params(RUNS.parser),
  )
  fc.assert(
    fc.property(jwtLike, (s) => parsesCleanly(s)),
    params(RUNS.parser),
  )
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 300 }), (h, p) =>
      parsesCleanly(`${b64url(Buffer.from(h))}.${b64url(Buffer.from(p))}.AAAA`),
    ),
    params(RUNS.parser),
  )
  t.pass(`${RUNS.parser} runs each of random text, JWT-like segments and random bytes`)
})

t.test('well-formed tokens round-trip: what the parser returns is what was encoded', async (t) => {
  const object = fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 8 })
  fc.assert(
    fc.property(
      object,
      object,
      fc.uint8Array({ minLength: 1, maxLength: 64 }),
      (header, payload, signature) => {
        const token = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}.${b64url(Buffer.from(signature))}`
        const parsed = parseCompactJws(token, 1 << 20)
        return (
          JSON.stringify(parsed.header) === JSON.stringify(header) &&
          JSON.stringify(parsed.payload) === JSON.stringify(payload) &&
          parsed.signature.equals(Buffer.from(signature))
        )
      },
    ),
    params(RUNS.parser),
  )
  t.pass(`${RUNS.parser} runs`)
})

t.test('mutations of a genuine token are refused by the parser or parse cleanly', async (t) => {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const now = Math.floor(Date.now() / 1000)
  const claims = {
    iss: 'http://127.0.0.1:4000',
    sub: 'u',
    aud: 'keygate-api',
    iat: now,
    exp: now + 900,
    jti: 'j',
  }
  const token = signJws({ alg: 'RS256', typ: 'at+jwt', kid: 'k1' }, claims, 'RS256', privateKey)
  const edit = fc.oneof(
    fc
      .record({
        at: fc.nat(token.length - 1),
        put: fc.constantFrom(...B64URL_CHARS, '.', '=', '+', '/', ' ', '\u00e9'),
      })
      .map(({ at, put }) => token.slice(0, at) + put + token.slice(at + 1)),
    fc.nat(token.length - 1).map((at) => token.slice(0, at) + token.slice(at + 1)),
    fc
      .record({ at: fc.nat(token.length), put: fc.constantFrom(...B64URL_CHARS, '.', '=') })
      .map(({ at, put }) => token.slice(0, at) + put + token.slice(at)),
  )
  fc.assert(
    fc.property(edit, (mutated) => parsesCleanly(mutated)),
    params(RUNS.parser),
  )
  t.pass(`${RUNS.parser} runs`)
})

/** A JSON document as a tree whose objects may repeat a member name, spelled plainly or with escapes. */
type Doc = { obj: Array<[string, boolean, Doc]> } | { arr: Doc[] } | { lit: unknown }

const docArbitrary = fc.letrec<{ doc: Doc }>((tie) => ({
  doc: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.jsonValue({ maxDepth: 0 }).map((lit): Doc => ({ lit })),
    fc
      .string({ maxLength: 6, unit: fc.constantFrom('a', '{', '}', '"', '\\', ':', ',', '[', 'é') })
      .map((lit): Doc => ({ lit })),
    fc
      .array(fc.tuple(fc.constantFrom('a', 'b', 'é', '"', '\\', '{'), fc.boolean(), tie('doc')), {
        maxLength: 4,
      })
      .map((obj): Doc => ({ obj })),
    fc.array(tie('doc'), { maxLength: 3 }).map((arr): Doc => ({ arr })),
  ),
})).doc

function render(doc: Doc, spaced: boolean): string {
  const sep = spaced ? ' ' : ''
  if ('lit' in doc) return JSON.stringify(doc.lit) ?? 'null'
  if ('arr' in doc) return `[${sep}${doc.arr.map((d) => render(d, spaced)).join(`,${sep}`)}${sep}]`
  const member = ([name, escaped, value]: [string, boolean, Doc]) => {
    const key = escaped
      ? `"${[...name].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}"`
      : JSON.stringify(name)
    return `${key}${sep}:${sep}${render(value, spaced)}`
  }
  return `{${sep}${doc.obj.map(member).join(`,${sep}`)}${sep}}`
}

function repeatsAName(doc: Doc): boolean {
  if ('lit' in doc) return false
  if ('arr' in doc) return doc.arr.some(repeatsAName)
  const names = doc.obj.map(([name]) => name)
  return new Set(names).size !== names.length || doc.obj.some(([, , value]) => repeatsAName(value))
}

t.test('duplicate member detection agrees with a reference on generated JSON', async (t) => {
  fc.assert(
    fc.property(
      docArbitrary,
      fc.boolean(),
      (doc, spaced) => hasDuplicateMembers(render(doc, spaced)) === repeatsAName(doc),
    ),
    params(RUNS.duplicates),
  )
  t.pass(`${RUNS.duplicates} runs`)
})

t.test('the gateway answers random requests with 2xx–4xx and stays healthy', async (t) => {
  const rejections: unknown[] = []
  const onRejection = (reason: unknown) => rejections.push(reason)
  process.on('unhandledRejection', onRejection)
  process.on('uncaughtException', onRejection)
  t.teardown(() => {
    process.off('unhandledRejection', onRejection)
    process.off('uncaughtException', onRejection)
  })
  const world = await startHostileWorld(t, { env: { LOG_LEVEL: 'warn' } })
  const gateway = world.gateway.app
  const valid = await world.token()
  const ctx = corpusContext(issuerMaterial(world.issuer), world.attacker, 'fast')

  const printable = (maxLength: number) =>
    fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength })
  const mutatedValid = fc
    .record({ at: fc.nat(valid.length - 1), put: fc.constantFrom(...B64URL_CHARS, '.', '=') })
    .map(({ at, put }) => valid.slice(0, at) + put + valid.slice(at + 1))
  const forged = fc
    .record({
      sub: printable(12),
      alg: fc.constantFrom('RS256', 'none', 'HS256', 'ES256'),
      kid: fc.oneof(fc.constant(ctx.issuer.kid), printable(20)),
    })
    .map(
      ({ sub, alg, kid }) =>
        `${b64url(JSON.stringify(ctx.header({ alg, kid })))}.${b64url(JSON.stringify(ctx.claims({ sub })))}.${valid.split('.')[2]}`,
    )
  const token = fc.oneof(mutatedValid, forged, jwtLike, printable(60))
  const authorization = fc.oneof(
    fc.tuple(fc.mixedCase(fc.constant('bearer')), token).map(([scheme, value]) => `${scheme} ${value}`),
    fc
      .tuple(fc.constantFrom('Basic', 'DPoP', 'Token', ''), token)
      .map(([scheme, value]) => `${scheme} ${value}`),
    printable(80),
  )
  const headers = fc.record(
    {
      authorization,
      'x-keygate-assertion': token,
      'x-keygate-subject': printable(20),
      'x-user-id': printable(20),
      cookie: printable(60),
      'x-forwarded-for': printable(30),
      'x-request-id': printable(40),
      'content-type': fc.constantFrom('application/json', 'text/plain', 'application/octet-stream', 'x/y'),
      origin: printable(30),
      connection: fc.constantFrom('keep-alive', 'x-keygate-assertion', 'authorization, x-user-id'),
    },
    { requiredKeys: [] },
  )
  const path = fc.oneof(
    fc.constantFrom(
      '/api/profile/me',
      '/api/orders',
      '/api/files',
      '/api/files/download/x',
      '/api/admin/keys',
      '/auth/logout-all',
      '/echo/required',
      '/echo/optional',
      '/echo/none',
      '/healthz',
      '/readyz',
      '/metrics',
      '/nowhere',
    ),
    fc.webPath().map((p) => (p.startsWith('/') ? p : `/${p}`)),
    fc
      .tuple(
        fc.constantFrom('/api/profile', '/echo/required', '/api/files/download'),
        fc.constantFrom('/..', '/%2e%2e', '/./', '//', '/%2F', '/%00', '/%zz', '\\'),
      )
      .map(([a, b]) => a + b + 'x'),
  )
  const query = fc.oneof(
    fc.constant(''),
    fc.webQueryParameters().map((q) => `?${q}`),
    fc.constant(`?access_token=${valid}`),
  )
  const method = fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS')
  const body = fc.option(printable(200), { nil: undefined })

  const statuses = new Map<number, number>()
  await fc.assert(
    fc.asyncProperty(method, path, query, headers, body, async (m, p, q, h, b) => {
      const res = await gateway.inject({
        method: m as 'GET',
        url: p + q,
        headers: h,
        ...(b === undefined || m === 'GET' || m === 'HEAD' ? {} : { payload: b }),
      })
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
      return res.statusCode >= 200 && res.statusCode < 500
    }),
    params(RUNS.gateway),
  )
  t.pass(
    `${RUNS.gateway} random requests answered 2xx–4xx: ${[...statuses]
      .sort(([a], [b]) => a - b)
      .map(([s, n]) => `${s}×${n}`)
      .join(' ')}`,
  )

  // Valid tokens, however the scheme is spelled and whatever junk rides along, are accepted.
  const junk = fc.dictionary(
    fc.constantFrom('x-a', 'x-b', 'accept', 'x-user-id', 'x-keygate-subject', 'cookie'),
    printable(30),
    { maxKeys: 3 },
  )
  await fc.assert(
    fc.asyncProperty(fc.mixedCase(fc.constant('bearer')), junk, async (scheme, extra) => {
      const res = await gateway.inject({
        url: '/api/profile/me',
        headers: { ...extra, authorization: `${scheme} ${valid}` },
      })
      return res.statusCode === 200 && res.json().sub === 'user-1'
    }),
    params(Math.ceil(RUNS.gateway / 10)),
  )
  t.pass('a valid token is accepted with any spelling of the scheme and any junk headers')

  // Random bytes on a real socket: header names, values (anything but CR and LF) and request targets.
  const tchar = fc.string({
    unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz-_0123456789!#$%&*+.^`|~'.split('')),
    minLength: 1,
    maxLength: 20,
  })
  const name = fc.oneof(fc.constantFrom('authorization', 'x-keygate-assertion', 'cookie', 'x-user-id'), tchar)
  const value = fc
    .uint8Array({ maxLength: 200 })
    .map((bytes) => Buffer.from(bytes.filter((x) => x !== 0x0d && x !== 0x0a)))
  const rawHeaders = fc
    .array(fc.tuple(name, value), { maxLength: 8 })
    .map((list) =>
      list.filter(
        ([n]) =>
          !['content-length', 'transfer-encoding', 'expect', 'host', 'connection', 'upgrade'].includes(n),
      ),
    )
  const target = fc.oneof(
    path,
    fc.string({
      unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)),
      minLength: 1,
      maxLength: 60,
    }),
  )
  const url = world.gateway.url
  const raw = new Map<number, number>()
  await fc.assert(
    fc.asyncProperty(target, rawHeaders, async (tgt, hs) => {
      const r = await rawRequest(url, { target: tgt, headers: hs as RawHeader[], timeoutMs: 10_000 })
      raw.set(r.status, (raw.get(r.status) ?? 0) + 1)
      return r.status >= 200 && r.status < 500
    }),
    params(RUNS.socket),
  )
  t.pass(
    `${RUNS.socket} raw socket requests answered 2xx–4xx: ${[...raw]
      .sort(([a], [b]) => a - b)
      .map(([s, n]) => `${s}×${n}`)
      .join(' ')}`,
  )

  t.equal((await gateway.inject('/healthz')).statusCode, 200, 'the gateway is healthy')
  t.equal((await gateway.operations.inject('/readyz')).statusCode, 200, 'and ready')
  t.equal(
    (await gateway.inject({ url: '/api/profile/me', headers: { authorization: `Bearer ${valid}` } }))
      .statusCode,
    200,
    'and serves',
  )
  t.strictSame(rejections, [], 'no unhandled rejection or uncaught exception')
  t.equal(world.attacker.connections, 0, "no request reached the attacker's server")
})
