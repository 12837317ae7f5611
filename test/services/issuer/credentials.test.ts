import argon2 from 'argon2'
import t from 'tap'
import {
  hashPassword,
  normaliseEmail,
  passwordAcceptable,
  verifyPassword,
} from '../../../services/issuer/credentials.js'

t.test('e-mail normalisation', async (t) => {
  t.equal(normaliseEmail('  Alice@Example.COM '), 'alice@example.com')
  // "é" composed (NFC) and decomposed (e + combining acute) are one address.
  t.equal(normaliseEmail('e\u0301mile@example.com'), normaliseEmail('\u00e9mile@example.com'))
  t.equal(normaliseEmail('e\u0301mile@example.com'), '\u00e9mile@example.com')
  for (const bad of [
    '',
    'plain',
    'a@b',
    '@example.com',
    'a@@example.com',
    'a b@example.com',
    'a@example..com',
    `${'a'.repeat(250)}@ex.com`,
  ]) {
    t.equal(normaliseEmail(bad), undefined, JSON.stringify(bad))
  }
})

t.test('password policy: 8 to 128 characters', async (t) => {
  t.notOk(passwordAcceptable('1234567'))
  t.ok(passwordAcceptable('12345678'))
  t.ok(passwordAcceptable('x'.repeat(128)))
  t.notOk(passwordAcceptable('x'.repeat(129)))
  t.ok(passwordAcceptable('🔑'.repeat(8)), 'characters, not UTF-16 units or bytes')
})

t.test('argon2id at OWASP parameters; unknown accounts checked against a dummy hash', async (t) => {
  const hash = await hashPassword('correct horse')
  t.match(hash, /^\$argon2id\$v=19\$m=19456,p=1,t=2\$/)
  t.ok(await argon2.verify(hash, 'correct horse'))
  t.ok(await verifyPassword(hash, 'correct horse'))
  t.notOk(await verifyPassword(hash, 'wrong'))
  t.notOk(await verifyPassword(undefined, 'correct horse'))
  t.notOk(await verifyPassword('not a hash', 'x'), 'a damaged hash is a mismatch, not a crash')

  // Same work either way: time both paths, loosely (the point is that neither skips the hash).
  const time = async (fn: () => Promise<unknown>) => {
    const start = process.hrtime.bigint()
    await fn()
    return Number(process.hrtime.bigint() - start) / 1e6
  }
  const known = await time(() => verifyPassword(hash, 'wrong'))
  const unknown = await time(() => verifyPassword(undefined, 'wrong'))
  t.ok(
    unknown > known / 3 && unknown < known * 3,
    `unknown ${unknown.toFixed(1)} ms vs known ${known.toFixed(1)} ms`,
  )
})
