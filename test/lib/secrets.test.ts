import { mkdtempSync, readdirSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { loadOrCreateSecret, sameSecret } from '../../lib/secrets.js'

t.test('a generated secret is created once, private, and read back by everyone after', async (t) => {
  const dir = join(mkdtempSync(join(tmpdir(), 'kg-secret-')), 'nested')
  const file = join(dir, 'feed.secret')
  const first = loadOrCreateSecret(file)
  t.match(first, /^[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url')
  t.equal(statSync(file).mode & 0o777, 0o600)
  t.equal(statSync(dir).mode & 0o777, 0o700)
  t.equal(loadOrCreateSecret(file), first, 'the second caller reads the same secret')
  t.same(readdirSync(dir), ['feed.secret'], 'no temp file left behind')
})

t.test('sameSecret: equal secrets only, whatever their lengths and types', async (t) => {
  t.ok(sameSecret('abc123', 'abc123'))
  t.ok(sameSecret(Buffer.from('abc123'), 'abc123'), 'bytes and text of the same secret')
  t.ok(sameSecret('', ''))
  t.notOk(sameSecret('abc123', 'abc124'))
  t.notOk(sameSecret('abc12', 'abc123'), 'a prefix is not the secret')
  t.notOk(sameSecret('abc123', 'abc1234'), 'nor is a longer value')
  t.notOk(sameSecret('', 'abc123'))
  t.notOk(sameSecret('ABC123', 'abc123'), 'case counts')
})
