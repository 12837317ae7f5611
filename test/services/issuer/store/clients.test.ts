/** The clients repository, through the IssuerStore, on SQLite and PostgreSQL. */
import type { ClientRecord } from '../../../../services/issuer/store/types.js'
import { onEachDialect, T0 } from './fixtures.js'

function client(id: string, overrides: Partial<ClientRecord> = {}): ClientRecord {
  return {
    id,
    name: `client ${id}`,
    authMethod: 'client_secret',
    secretHash: 'hash',
    jwks: null,
    jwksUri: null,
    grantTypes: ['client_credentials'],
    scopes: ['a', 'b'],
    audiences: ['orders'],
    createdAt: T0,
    updatedAt: T0,
    disabledAt: null,
    service: null,
    ...overrides,
  }
}

await onEachDialect(async (t, { store, open, shared }) => {
  t.test('clients: create, find, list, new secret, disable', async (t) => {
    const a = client('kgc_a')
    const jwks = { keys: [{ kty: 'EC', crv: 'P-256', x: 'x', y: 'y' }] }
    const b = client('kgc_b', {
      authMethod: 'private_key_jwt',
      secretHash: null,
      jwks,
      createdAt: T0 + 1,
      updatedAt: T0 + 1,
    })
    await store.clients.createClient(a)
    await store.clients.createClient(b)
    t.same(await store.clients.findClient('kgc_a'), a)
    t.same(await store.clients.findClient('kgc_b'), b, 'lists and the JWKS come back as they went in')
    t.equal(await store.clients.findClient('kgc_nobody'), undefined)
    t.same(
      (await store.clients.listClients({ limit: 10, offset: 1 })).map((c) => c.id),
      ['kgc_b'],
    )
    t.ok(await store.clients.setClientSecretHash('kgc_a', 'new', T0 + 5))
    t.equal((await store.clients.findClient('kgc_a'))!.secretHash, 'new')
    t.notOk(await store.clients.setClientSecretHash('kgc_nobody', 'x', T0))
    t.ok(await store.clients.disableClient('kgc_a', T0 + 9))
    t.ok(await store.clients.disableClient('kgc_a', T0 + 20), 'disabling again is fine')
    t.equal((await store.clients.findClient('kgc_a'))!.disabledAt, T0 + 9, 'the first time stays')
    t.notOk(await store.clients.disableClient('kgc_nobody', T0))
    t.ok(await store.clients.setClientService('kgc_b', 'orders', T0 + 30))
    t.match(await store.clients.findClient('kgc_b'), { service: 'orders', updatedAt: T0 + 30 })
    t.notOk(await store.clients.setClientService('kgc_nobody', 'orders', T0))
  })

  t.test('client assertion ids: used once, on every handle, forgotten after expiry', async (t) => {
    t.ok(await store.clients.useAssertionId('kgc_a', 'j1', T0 + 1000, T0))
    t.notOk(await store.clients.useAssertionId('kgc_a', 'j1', T0 + 1000, T0 + 1), 'a replay')
    t.ok(await store.clients.useAssertionId('kgc_b', 'j1', T0 + 1000, T0 + 1), "another client's jti")
    if (shared) {
      const other = await open()
      t.teardown(() => other.close())
      t.notOk(
        await other.clients.useAssertionId('kgc_a', 'j1', T0 + 1000, T0 + 2),
        'seen by another instance',
      )
    }
    t.ok(await store.clients.useAssertionId('kgc_a', 'j1', T0 + 3000, T0 + 1000), 'expired entries go')
  })
})
