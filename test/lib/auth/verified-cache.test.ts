import t from 'tap'
import type { Identity } from '../../../lib/auth/types.js'
import { VerifiedTokenCache } from '../../../lib/auth/verified-cache.js'

const identity = (subject: string) => ({ subject, issuer: 'https://issuer.test' }) as Identity

t.test('bounded: the least recently used entry goes first', async (t) => {
  const cache = new VerifiedTokenCache(2)
  cache.set('a', identity('a'), 'k1', 100)
  cache.set('b', identity('b'), 'k1', 100)
  t.equal(cache.get('a', 0)?.subject, 'a', 'a is now the most recently used')
  cache.set('c', identity('c'), 'k1', 100)
  t.equal(cache.size, 2)
  t.equal(cache.get('b', 0), undefined, 'b was evicted')
  t.equal(cache.get('a', 0)?.subject, 'a')
  t.equal(cache.get('c', 0)?.subject, 'c')
})

t.test('an entry dies at its exp plus tolerance', async (t) => {
  const cache = new VerifiedTokenCache()
  cache.set('a', identity('a'), 'k1', 100)
  t.ok(cache.get('a', 99.9))
  t.equal(cache.get('a', 100), undefined)
  t.equal(cache.size, 0, 'and is dropped when found dead')
})

t.test('a removed key drops exactly the entries it verified', async (t) => {
  const cache = new VerifiedTokenCache()
  for (let i = 0; i < 50; i++) cache.set(`t${i}`, identity(`u${i}`), i % 2 ? 'odd' : 'even', 100)
  cache.set('other', identity('o'), 'third', 100)
  cache.dropKeys(['odd', 'absent'])
  t.equal(cache.size, 26)
  t.equal(cache.get('t1', 0), undefined)
  t.ok(cache.get('t2', 0))
  cache.dropKeys([])
  t.equal(cache.size, 26, 'no key, nothing dropped')
  cache.dropKeys(new Set(['even', 'third']))
  t.equal(cache.size, 0)
})

t.test('dropWhere drops what a revocation covers', async (t) => {
  const cache = new VerifiedTokenCache()
  cache.set('a', identity('alice'), 'k1', 100)
  cache.set('b', identity('bob'), 'k1', 100)
  cache.dropWhere((i) => i.subject === 'bob')
  t.ok(cache.get('a', 0))
  t.equal(cache.get('b', 0), undefined)
  cache.clear()
  t.equal(cache.size, 0)
})
