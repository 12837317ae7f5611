import { generateKeyPairSync } from 'node:crypto'
import t, { type Test } from 'tap'
import { JwksCache, type JwksCacheOptions, maxAgeMs } from '../../../lib/auth/jwks-cache.js'
import { startTokenIssuer } from '../../helpers/token-issuer.js'

/** A clock the test moves by hand. */
function fakeClock(start = Date.now()) {
  let now = start
  return { now: () => now, advance: (ms: number) => (now += ms) }
}

async function setup(t: Test, options: Partial<JwksCacheOptions> = {}) {
  const issuer = await startTokenIssuer()
  const clock = fakeClock()
  const fetches: string[] = []
  const cache = new JwksCache({
    issuer: issuer.url,
    jwksUri: issuer.jwksUri,
    algorithms: ['RS256'],
    now: clock.now,
    onFetch: (outcome) => fetches.push(outcome),
    ...options,
  })
  t.teardown(async () => {
    await cache.close()
    await issuer.close()
  })
  return { issuer, clock, cache, fetches }
}

t.test('loads at start; known kids resolve without a fetch', async (t) => {
  const { issuer, cache, fetches } = await setup(t)
  cache.start()
  await cache.ready()
  t.ok(cache.usable())
  const key = cache.getKey(issuer.keys[0]!.kid)
  t.equal((key as { alg: string }).alg, 'RS256', 'returned synchronously, bound to RS256')
  t.same(fetches, ['ok'])
  t.equal(issuer.jwksRequests, 1)
})

t.test('100 concurrent cold lookups share one fetch', async (t) => {
  const { issuer, cache } = await setup(t)
  cache.start()
  const keys = await Promise.all(Array.from({ length: 100 }, () => cache.getKey(issuer.keys[0]!.kid)))
  t.ok(keys.every((k) => k?.kid === issuer.keys[0]!.kid))
  t.equal(issuer.jwksRequests, 1)
})

t.test('an unknown kid refetches once per cooldown', async (t) => {
  const { issuer, cache, clock } = await setup(t, { cooldownMs: 30_000 })
  cache.start()
  await cache.ready()
  const rotated = await issuer.rotate()
  t.equal((await cache.getKey(rotated.kid))?.kid, rotated.kid, 'a new key is found by one refetch')
  t.equal(issuer.jwksRequests, 2)

  const flood = await Promise.all(Array.from({ length: 200 }, (_, i) => cache.getKey(`random-${i}`)))
  t.ok(flood.every((k) => k === undefined))
  t.equal(issuer.jwksRequests, 2, 'a flood of unknown kids inside the cooldown fetches nothing')

  clock.advance(30_001)
  const again = await Promise.all(Array.from({ length: 50 }, (_, i) => cache.getKey(`other-${i}`)))
  t.ok(again.every((k) => k === undefined))
  t.equal(issuer.jwksRequests, 3, 'after the cooldown, exactly one more fetch')
})

t.test('Cache-Control max-age is honoured within the configured bounds', async (t) => {
  t.equal(maxAgeMs('public, max-age=300'), 300_000)
  t.equal(maxAgeMs('max-age="60", must-revalidate'), 60_000)
  t.equal(maxAgeMs('no-store'), 0)
  t.equal(maxAgeMs(undefined), undefined)
  t.equal(maxAgeMs('private'), undefined)

  const { issuer, cache, clock } = await setup(t, { minTtlMs: 60_000, maxTtlMs: 600_000 })
  issuer.maxAge = 5 // below the minimum: clamped up to 60 s
  cache.start()
  await cache.ready()
  clock.advance(59_000)
  t.notOk(cache.servingStale(), 'fresh within the clamped lifetime')
  clock.advance(2_000)
  t.ok(cache.servingStale(), 'stale after it')

  const { issuer: i2, cache: c2, clock: k2 } = await setup(t, { minTtlMs: 60_000, maxTtlMs: 600_000 })
  i2.maxAge = 86_400 // above the maximum: clamped down to 10 min
  c2.start()
  await c2.ready()
  k2.advance(599_000)
  t.notOk(c2.servingStale())
  k2.advance(2_000)
  t.ok(c2.servingStale())
})

t.test('the background refresh follows max-age', async (t) => {
  const { issuer, cache } = await setup(t, { minTtlMs: 50, maxTtlMs: 50 })
  cache.start()
  await cache.ready()
  const rotated = await issuer.rotate({ drop: true })
  const removed: string[][] = []
  cache.onKeysRemoved((kids) => removed.push(kids))
  while (!cache.kids().includes(rotated.kid)) await new Promise((r) => setTimeout(r, 20))
  t.ok(issuer.jwksRequests >= 2)
  t.equal(removed.length, 1, 'the dropped key is reported as removed')
})

t.test('issuer down: the last keys serve until the staleness bound, then refusal', async (t) => {
  const { issuer, cache, clock } = await setup(t, {
    minTtlMs: 60_000,
    maxTtlMs: 60_000,
    maxStaleMs: 3_600_000,
  })
  cache.start()
  await cache.ready()
  const kid = issuer.keys[0]!.kid
  issuer.respond = (reply) => reply.code(503).send('down')
  await cache.refresh()
  clock.advance(60_000 + 3_599_000)
  t.ok(cache.usable(), 'still usable just inside the bound')
  t.ok(cache.servingStale())
  t.equal((await cache.getKey(kid))?.kid, kid)
  clock.advance(2_000)
  t.notOk(cache.usable(), 'unusable past the bound')

  issuer.respond = undefined
  await cache.refresh()
  t.ok(cache.usable(), 'recovers when the issuer answers again')
  t.notOk(cache.servingStale())
})

t.test('a refused response leaves a cold cache not ready, and never follows redirects', async (t) => {
  const elsewhere = await startTokenIssuer()
  t.teardown(() => elsewhere.close())
  const { issuer, cache } = await setup(t)
  issuer.respond = (reply) => reply.redirect(elsewhere.jwksUri, 302)
  await cache.refresh()
  t.notOk(cache.usable())
  t.equal(elsewhere.jwksRequests, 0, 'the redirect target was never contacted')
})

t.test('while cold after a failed load, lookups leave retrying to the background loop', async (t) => {
  const { issuer, cache } = await setup(t)
  issuer.respond = (reply) => reply.code(500).send()
  await cache.refresh()
  const keys = await Promise.all(Array.from({ length: 50 }, () => cache.getKey(issuer.keys[0]!.kid)))
  t.ok(keys.every((k) => k === undefined))
  t.equal(issuer.jwksRequests, 1, 'no request-driven fetch hammers a failing issuer')
})

t.test('a hanging JWKS endpoint times out', async (t) => {
  const { issuer, cache, fetches } = await setup(t, { timeoutMs: 200 })
  issuer.respond = () => new Promise(() => {})
  const started = Date.now()
  await cache.refresh()
  t.ok(Date.now() - started < 2_000, 'gave up quickly')
  t.same(fetches, ['error'])
})

t.test('oversized and malformed bodies are refused; the previous keys stay', async (t) => {
  const { issuer, cache, fetches } = await setup(t, { maxBytes: 4096 })
  await cache.refresh()
  const kid = issuer.keys[0]!.kid
  const big = { keys: [...issuer.keys.map((k) => k.publicJwk)], padding: 'x'.repeat(10_000) }
  issuer.respond = (reply) => reply.header('cache-control', 'max-age=60').send(big)
  await cache.refresh()
  issuer.respond = (reply) => {
    // Chunked, without a content-length: the limit is enforced while reading.
    reply.raw.writeHead(200, { 'content-type': 'application/json' })
    reply.raw.write('{"keys":[],"x":"')
    reply.raw.end(`${'y'.repeat(8000)}"}`)
    return reply
  }
  await cache.refresh()
  issuer.respond = (reply) => reply.type('application/json').send('{"keys": [')
  await cache.refresh()
  issuer.respond = (reply) => reply.send({ keys: 'nope' })
  await cache.refresh()
  issuer.respond = (reply) => reply.send({ keys: [] })
  await cache.refresh()
  issuer.respond = (reply) => reply.send({ keys: [{ kty: 'RSA', kid: 'broken', n: 'AQAB', e: 'AQAB' }] })
  await cache.refresh()
  t.same(
    fetches,
    ['ok', 'error', 'error', 'error', 'error', 'error', 'error'],
    'a set with no usable key too',
  )
  t.ok(cache.kids().includes(kid), 'keys from the last good response are kept')
})

t.test('only usable public signing keys are imported, each bound to one algorithm', async (t) => {
  const { issuer } = await setup(t)
  const skipped: string[] = []
  const good = issuer.keys[0]!.publicJwk
  const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' })
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const ecPrivate = ec.privateKey.export({ format: 'jwk' })
  const noAlg = { ...good, kid: 'no-alg', alg: undefined }
  issuer.respond = (reply) =>
    reply.send({
      keys: [
        good,
        { kty: 'oct', k: 'c2VjcmV0', kid: 'hmac', alg: 'HS256' },
        { ...weak, kid: 'weak', alg: 'RS256' },
        { ...good, kid: 'rs512', alg: 'RS512' },
        { ...good, kid: 'enc', use: 'enc' },
        { ...good, kid: 'ops', key_ops: ['encrypt'] },
        { ...good, kid: 'mismatch', alg: 'ES256' },
        { ...ecPrivate, kid: 'ec-with-private-part', alg: 'ES256' },
        noAlg,
        { ...good, kid: 'dup' },
        { ...good, kid: 'dup' },
        'not an object',
      ],
    })
  const c = new JwksCache({
    issuer: issuer.url,
    jwksUri: issuer.jwksUri,
    algorithms: ['RS256', 'ES256'],
    onKeySkipped: (kid, reason) => skipped.push(`${String(kid)}: ${reason}`),
  })
  t.teardown(() => c.close())
  await c.refresh()
  t.same(c.kids().sort(), [good.kid, 'ec-with-private-part', 'no-alg'].sort())
  const ecKey = await c.getKey('ec-with-private-part')
  t.equal(ecKey?.key.type, 'public', 'private members are dropped on import')
  t.equal(
    (await c.getKey('no-alg'))?.alg,
    'RS256',
    'a key without alg binds to the one allowed RSA algorithm',
  )
  t.equal(skipped.length, 8)
  t.match(skipped.join('\n'), /weak: RSA key too short/)
  t.match(skipped.join('\n'), /dup: duplicate kid/)
  t.equal(c.refusedKeys().length, 8, 'every refused key is kept for metrics and readiness detail')
  t.match(c.refusedKeys(), [{ kid: String, reason: String }])
  t.ok(c.refusedKeys().some((k) => k.kid === 'weak' && k.reason === 'RSA key too short'))
})

t.test('discovery supplies the JWKS URI when none is configured', async (t) => {
  const { issuer } = await setup(t)
  const cache = new JwksCache({ issuer: issuer.url, algorithms: ['RS256'] })
  t.teardown(() => cache.close())
  await cache.refresh()
  t.ok(cache.usable())
  t.equal(issuer.jwksRequests, 1)

  const wrong = new JwksCache({ issuer: `${issuer.url}/other`, algorithms: ['RS256'] })
  t.teardown(() => wrong.close())
  await wrong.refresh()
  t.notOk(wrong.usable(), 'a discovery document for another issuer is refused')
})

t.test('keys without kid: usable as the sole key for their alg, refused beside another', async (t) => {
  const { issuer } = await setup(t)
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const ecJwk = { ...ec.publicKey.export({ format: 'jwk' }), alg: 'ES256' }
  const bare = (jwk: Record<string, unknown>) => ({ ...jwk, kid: undefined })
  const rsa = issuer.keys[0]!.publicJwk as Record<string, unknown>
  const second = (await issuer.rotate()).publicJwk as Record<string, unknown>
  issuer.respond = (reply) => reply.send({ keys: [bare(rsa), ecJwk] })
  const skipped: string[] = []
  const c = new JwksCache({
    issuer: issuer.url,
    jwksUri: issuer.jwksUri,
    algorithms: ['RS256', 'ES256'],
    onKeySkipped: (_kid, reason) => skipped.push(reason),
  })
  t.teardown(() => c.close())
  await c.refresh()
  t.ok(c.usable(), 'a set of keys without kid is usable')
  t.equal(c.soleKey('RS256')?.unnamed, true, 'the RSA key without kid is the sole RS256 key')
  t.equal(c.soleKey('ES256')?.alg, 'ES256', 'the EC key without kid (and with alg) is the sole ES256 key')
  t.equal(c.soleKey('PS256'), undefined)
  t.equal(await c.getKey(c.soleKey('RS256')!.kid), undefined, 'its label is never a kid lookup')
  t.same(c.refusedKeys(), [])

  const removed: string[][] = []
  c.onKeysRemoved((kids) => removed.push(kids))
  const rsaLabel = c.soleKey('RS256')!.kid
  issuer.respond = (reply) => reply.send({ keys: [bare(rsa), second, ecJwk] })
  await c.refresh()
  t.equal(c.soleKey('RS256'), undefined, 'two RS256 keys: no sole key, none tried in turn')
  t.equal((await c.getKey(second.kid as string))?.kid, second.kid, 'the named one still serves by kid')
  t.match(c.refusedKeys(), [{ kid: rsaLabel, reason: 'no kid and not the only RS256 key' }])
  t.same(skipped, ['no kid and not the only RS256 key'])
  t.same(removed, [[rsaLabel]], 'tokens verified with the refused key are dropped from the cache')

  issuer.respond = (reply) => reply.send({ keys: [second] })
  await c.refresh()
  t.equal(c.soleKey('RS256')?.kid, second.kid, 'a named key is the sole key of its alg too')
  t.equal(c.soleKey('ES256'), undefined)
})
