import t from 'tap'
import fc from 'fast-check'
import { hasDuplicateMembers, parseCompactJws } from '../../../lib/auth/compact.js'
import { KeygateError } from '../../../lib/errors.js'

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64url')
const header = b64('{"alg":"RS256","typ":"at+jwt","kid":"k1"}')
const payload = b64('{"sub":"u","iss":"x"}')
const sig = b64('signature-bytes')
/** 16 bytes: the last of its 22 characters carries 4 unused bits, which canonical form leaves at zero. */
const sig16 = b64('signature-bytes!')
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
const nonCanonical = sig16.slice(0, -1) + ALPHABET[ALPHABET.indexOf(sig16.at(-1)!) + 1]

function code(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return err instanceof KeygateError ? err.code : 'not a KeygateError'
  }
  return undefined
}

t.test('a well-formed compact JWS parses into header, payload and signing input', async (t) => {
  const parsed = parseCompactJws(`${header}.${payload}.${sig}`)
  t.same(parsed.header, { alg: 'RS256', typ: 'at+jwt', kid: 'k1' })
  t.same(parsed.payload, { sub: 'u', iss: 'x' })
  t.equal(parsed.signingInput, `${header}.${payload}`)
  t.equal(parsed.signature.toString(), 'signature-bytes')
})

t.test('a header seen before: the same verdicts, one frozen parse shared', async (t) => {
  const first = parseCompactJws(`${header}.${payload}.${sig}`)
  const again = parseCompactJws(`${header}.${b64('{"sub":"v","iss":"x"}')}.${sig}`)
  t.equal(again.header, first.header, 'the parsed header is reused')
  t.ok(Object.isFrozen(again.header), 'and cannot be changed by whoever reads it')
  t.same(again.payload, { sub: 'v', iss: 'x' }, 'the payload is always parsed afresh')
  t.equal(
    code(() => parseCompactJws(`${header}.${b64('[1]')}.${sig}`)),
    'KG_TOKEN_MALFORMED',
    'bad payload',
  )
  t.equal(
    code(() => parseCompactJws(`${header}.${payload}.${nonCanonical}`)),
    'KG_TOKEN_MALFORMED',
  )
  const duplicate = b64('{"alg":"RS256","alg":"none","kid":"k1"}')
  for (let i = 0; i < 2; i++) {
    t.equal(
      code(() => parseCompactJws(`${duplicate}.${payload}.${sig}`)),
      'KG_TOKEN_MALFORMED',
      `refused ${i}`,
    )
  }
  // More distinct headers than are remembered: each still parses to itself.
  for (let i = 0; i < 40; i++) {
    const h = { alg: 'RS256', typ: 'at+jwt', kid: `k${i}` }
    t.same(parseCompactJws(`${b64(JSON.stringify(h))}.${payload}.${sig}`).header, h)
  }
  t.same(parseCompactJws(`${header}.${payload}.${sig}`).header, { alg: 'RS256', typ: 'at+jwt', kid: 'k1' })
})

t.test('anything but three canonical base64url segments is malformed', async (t) => {
  const cases: Record<string, string> = {
    'two segments': `${header}.${payload}`,
    'four segments': `${header}.${payload}.${sig}.${sig}`,
    'five segments (JWE)': `${header}.${payload}.${sig}.${sig}.${sig}`,
    'empty signature': `${header}.${payload}.`,
    'empty header': `.${payload}.${sig}`,
    padding: `${header}.${payload}.${b64('x')}==`,
    'plus sign': `${header}.${payload}.ab+c`,
    slash: `${header}.${payload}.ab/c`,
    'inner space': `${header}.${payload}.ab c`,
    'leading space': ` ${header}.${payload}.${sig}`,
    'length 4n+1': `${header}.${payload}.abcde`,
    'non-canonical trailing bits': `${header}.${payload}.${nonCanonical}`,
    'JSON serialization': JSON.stringify({ payload, signatures: [{ protected: header, signature: sig }] }),
    'not UTF-8': `${b64(Buffer.from([0xff, 0xfe, 0x7b]))}.${payload}.${sig}`,
    'payload after a byte order mark': `${header}.${b64('\ufeff{"sub":"u","iss":"x"}')}.${sig}`,
    'header not JSON': `${b64('alg=none')}.${payload}.${sig}`,
    'header a JSON string': `${b64('"x"')}.${payload}.${sig}`,
    'payload an array': `${header}.${b64('[{"sub":"u"}]')}.${sig}`,
    'payload null': `${header}.${b64('null')}.${sig}`,
    'duplicate header member': `${b64('{"alg":"RS256","alg":"none"}')}.${payload}.${sig}`,
    'duplicate payload member': `${header}.${b64('{"sub":"a","sub":"b"}')}.${sig}`,
  }
  for (const [name, token] of Object.entries(cases)) {
    t.equal(
      code(() => parseCompactJws(token)),
      'KG_TOKEN_MALFORMED',
      name,
    )
  }
})

t.test('the non-canonical signature decodes to the same bytes as the canonical one', async (t) => {
  // Which is exactly why it must be refused: two spellings of one token would cache and log differently.
  t.same(Buffer.from(nonCanonical, 'base64url'), Buffer.from(sig16, 'base64url'))
  t.not(nonCanonical, sig16)
  t.equal(
    code(() => parseCompactJws(`${header}.${payload}.${sig16}`)),
    undefined,
  )
})

t.test('oversized tokens are refused before any decoding', async (t) => {
  const huge = `${header}.${b64('{"x":"' + 'a'.repeat(10_000) + '"}')}.${sig}`
  t.equal(
    code(() => parseCompactJws(huge)),
    'KG_TOKEN_TOO_LARGE',
  )
  t.equal(
    code(() => parseCompactJws(huge, 20_000)),
    undefined,
    'a larger cap admits it',
  )
})

t.test('duplicate member detection', async (t) => {
  t.notOk(hasDuplicateMembers('{"a":1,"b":{"a":2},"c":[{"a":1},{"a":2}]}'), 'same name at different levels')
  t.ok(hasDuplicateMembers('{"a":{"x":1,"x":2}}'), 'nested duplicate')
  t.ok(hasDuplicateMembers('{"a":1,"\\u0061":2}'), 'escaped duplicate')
  t.notOk(
    hasDuplicateMembers('{"a":"{\\"a\\":1,\\"a\\":2}"}'),
    'duplicates inside a string value do not count',
  )
  t.ok(hasDuplicateMembers('[{"k":1},{"k":1,"k":2}]'), 'duplicate inside an array element')
})

t.test('canonical base64url: accepted exactly when re-encoding gives back the same text', async (t) => {
  const alphabetString = fc
    .array(fc.constantFrom(...ALPHABET), { minLength: 2, maxLength: 12 })
    .map((chars) => chars.join(''))
    .filter((s) => s.length % 4 !== 1)
  fc.assert(
    fc.property(alphabetString, (segment) => {
      const reencoded = Buffer.from(segment, 'base64url').toString('base64url') === segment
      const accepted = code(() => parseCompactJws(`${header}.${payload}.${segment}`)) === undefined
      return accepted === reencoded
    }),
    { numRuns: 2000 },
  )
  t.pass('same verdict on every generated segment')
})

t.test('duplicate member detection agrees with a parse of every member name', async (t) => {
  /** The plain reference: every object's keys collected through JSON.parse of each quoted name. */
  function reference(text: string): boolean {
    const stack: Array<Set<string> | null> = []
    let expectKey = false
    for (let i = 0; i < text.length; i++) {
      const c = text[i]
      if (c === '{') {
        stack.push(new Set())
        expectKey = true
      } else if (c === '[') {
        stack.push(null)
        expectKey = false
      } else if (c === '}' || c === ']') {
        stack.pop()
        expectKey = false
      } else if (c === ',') {
        expectKey = stack.at(-1) instanceof Set
      } else if (c === '"') {
        let j = i + 1
        while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1
        if (expectKey) {
          const name = JSON.parse(text.slice(i, j + 1)) as string
          const members = stack.at(-1) as Set<string>
          if (members.has(name)) return true
          members.add(name)
          expectKey = false
        }
        i = j
      }
    }
    return false
  }
  const key = fc.constantFrom('a', 'b', '\\u0061', 'é', '\\"', 'a\\\\', '')
  const leaf = fc.oneof(fc.integer(), fc.string({ maxLength: 4 }), fc.constant(null))
  const { json } = fc.letrec((tie) => ({
    json: fc.oneof(
      { depthSize: 'small' },
      leaf.map((v) => JSON.stringify(v)),
      tie('object'),
      tie('array'),
    ),
    object: fc
      .array(fc.tuple(key, tie('json')), { maxLength: 4 })
      .map((members) => `{${members.map(([k, v]) => `"${k}":${v as string}`).join(',')}}`),
    array: fc.array(tie('json'), { maxLength: 3 }).map((items) => `[${items.join(',')}]`),
  }))
  fc.assert(
    fc.property(json as fc.Arbitrary<string>, (text) => hasDuplicateMembers(text) === reference(text)),
    { numRuns: 2000 },
  )
  t.pass('same verdict on every generated document')
})

t.test('duplicate member detection in objects with many members', async (t) => {
  const names = Array.from({ length: 40 }, (_, i) => `"k${i}":${i}`)
  t.notOk(hasDuplicateMembers(`{${names.join(',')}}`), '40 distinct names')
  t.ok(hasDuplicateMembers(`{${names.join(',')},"k3":0}`), 'a late duplicate of an early name')
  t.ok(hasDuplicateMembers(`{${names.join(',')},"k39":0}`), 'a duplicate of a name seen past the list')
})
