/** The users repository, through the IssuerStore, on SQLite and PostgreSQL. */
import { randomUUID } from 'node:crypto'
import { EmailTakenError } from '../../../../services/issuer/store/types.js'
import { onEachDialect, T0, user } from './fixtures.js'

await onEachDialect(async (t, { store }) => {
  t.test('users: create, find, unique e-mail, roles, password', async (t) => {
    const alice = user('alice@example.com')
    await store.createUser(alice)
    t.same(await store.findUserByEmail('alice@example.com'), alice)
    t.same(await store.findUserById(alice.id), alice)
    t.equal(await store.findUserByEmail('nobody@example.com'), undefined)
    await t.rejects(store.createUser(user('alice@example.com')), EmailTakenError)
    t.ok(await store.setUserRoles(alice.id, ['admin', 'user'], T0 + 5))
    t.same((await store.findUserById(alice.id))!.roles, ['admin', 'user'])
    t.equal((await store.findUserById(alice.id))!.updatedAt, T0 + 5, 'times come back as numbers')
    t.notOk(await store.setUserRoles(randomUUID(), ['x'], T0))
    t.ok(await store.setPasswordHash(alice.id, '$argon2id$new', T0 + 6))
    t.equal((await store.findUserById(alice.id))!.passwordHash, '$argon2id$new')
    await store.createUser({ ...user('bob@example.com'), createdAt: T0 + 1 })
    const page = await store.listUsers({ limit: 1, offset: 1 })
    t.same(
      page.map((u) => u.email),
      ['bob@example.com'],
    )
  })
})
