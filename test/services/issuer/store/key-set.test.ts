/** The key-set repository, through the IssuerStore, on SQLite and PostgreSQL. */
import { onEachDialect, sealedKey, T0 } from './fixtures.js'

await onEachDialect(async (t, { store, open, shared }) => {
  t.test('key set: replaced as a whole under its lock; the revision counts changes', async (t) => {
    t.same(await store.readKeySet(), { keys: [], revision: 0 }, 'empty before first start')
    const first = await store.updateKeySet(async (current) => ({
      keys: [...current.keys, sealedKey('a', { state: 'active', activatedAt: T0 }), sealedKey('b')],
      result: 'generated',
    }))
    t.equal(first.result, 'generated')
    t.equal(first.revision, 1)
    t.same(await store.readKeySet(), { keys: first.keys, revision: 1 }, 'every column comes back')
    t.equal(await store.keySetRevision(), 1)
    const unchanged = await store.updateKeySet(async () => ({ result: 'nothing to do' }))
    t.equal(unchanged.revision, 1, 'no change, no new revision')

    const other = await open()
    t.teardown(() => other.close())
    await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        // SQLite: one handle (a second one in the same process would wait on the lock synchronously).
        (i % 2 && shared ? other : store).updateKeySet(async (current) => {
          await new Promise((resolve) => setTimeout(resolve, 5))
          return {
            keys: current.keys.map((k) => ({ ...k, createdAt: k.createdAt + 1 })),
            result: undefined,
          }
        }),
      ),
    )
    const after = await other.readKeySet()
    t.same(
      after.keys.map((k) => k.createdAt),
      [T0 + 6, T0 + 6],
      'six concurrent read-modify-writes: none lost',
    )
    t.equal(after.revision, 7)
    await store.updateKeySet(async () => ({
      keys: [sealedKey('c', { state: 'revoked', revokedAt: 5, removeAt: 9 })],
      result: 0,
    }))
    t.same(
      (await store.readKeySet()).keys.map((k) => [k.kid, k.state, k.revokedAt, k.removeAt]),
      [['c', 'revoked', 5, 9]],
      'keys left out are deleted',
    )
  })
})
