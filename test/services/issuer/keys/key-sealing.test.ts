import { randomBytes } from 'node:crypto'
import t from 'tap'
import { KeySealer, parseKeyEncryptionKey } from '../../../../services/issuer/keys/key-sealing.js'

const jwk = { kty: 'RSA', n: 'modulus', e: 'AQAB', d: 'private-exponent', p: 'p', q: 'q' }

t.test('a sealed key opens with the same key and kid, and hides the private parts', async (t) => {
  const sealer = new KeySealer(randomBytes(32))
  const sealed = sealer.seal('kid-1', jwk)
  t.match(sealed, new RegExp(`^kgk1\\.${sealer.kekId}\\.[\\w-]+\\.[\\w-]+\\.[\\w-]+$`))
  t.notMatch(sealed, /private-exponent/)
  t.not(sealer.seal('kid-1', jwk), sealed, 'a fresh IV every time')
  t.same(sealer.open('kid-1', sealed), jwk)
})

t.test('a wrong key, another row or a changed byte is refused with a clear message', async (t) => {
  const kek = randomBytes(32)
  const sealer = new KeySealer(kek)
  const sealed = sealer.seal('kid-1', jwk)
  t.throws(() => new KeySealer(randomBytes(32)).open('kid-1', sealed), {
    message: /sealed with a different KEY_ENCRYPTION_KEY/,
  })
  t.throws(() => sealer.open('kid-2', sealed), { message: /does not open with KEY_ENCRYPTION_KEY/ })
  const parts = sealed.split('.')
  const ciphertext = Buffer.from(parts[3]!, 'base64url')
  ciphertext[0]! ^= 1
  parts[3] = ciphertext.toString('base64url')
  t.throws(() => sealer.open('kid-1', parts.join('.')), { message: /does not open/ })
  t.throws(() => sealer.open('kid-1', 'plain-jwk'), { message: /not in a known sealed form/ })
})

t.test('KEY_ENCRYPTION_KEY: 32 bytes as base64, base64url or hex', async (t) => {
  const kek = randomBytes(32)
  for (const text of [kek.toString('base64'), kek.toString('base64url'), kek.toString('hex'), ` ${kek.toString('hex')}\n`]) {
    t.same(parseKeyEncryptionKey(text), kek)
  }
  for (const bad of ['', 'short', randomBytes(31).toString('base64'), randomBytes(33).toString('hex')]) {
    t.throws(() => parseKeyEncryptionKey(bad), { message: /KEY_ENCRYPTION_KEY must be 32 random bytes/ })
  }
})
