/**
 * `keygate start` registers orders' client on first start and reuses it: same client, same secret file; a lost
 * secret file gets a new secret; a configured client is left alone.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ORDERS_CLIENT_NAME, ordersClientSettings } from '../../bin/orders-client.js'
import { clientSecretHash } from '../../services/issuer/oauth/clients.js'
import { openIssuerStore } from '../../services/issuer/store/issuer-store.js'

t.test('registered once, reused, given a new secret when its file is lost', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kg-orders-client-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const env = { DATA_DIR: join(dir, 'data'), KEYS_DIR: join(dir, 'keys') }

  const first = await ordersClientSettings(env)
  t.match(first.ORDERS_CLIENT_ID, /^kgc_/)
  const secretFile = first.ORDERS_CLIENT_SECRET_FILE!
  t.equal(secretFile, join(env.DATA_DIR, 'orders-client-secret'))
  t.equal(statSync(secretFile).mode & 0o777, 0o600, 'the secret file is for its owner only')
  const secret = readFileSync(secretFile, 'utf8').trim()

  const again = await ordersClientSettings(env)
  t.same(again, first, 'the next start reuses the client')
  t.equal(readFileSync(secretFile, 'utf8').trim(), secret, 'and its secret')

  rmSync(secretFile)
  const rotated = await ordersClientSettings(env)
  t.equal(rotated.ORDERS_CLIENT_ID, first.ORDERS_CLIENT_ID, 'a lost secret file: the same client')
  const newSecret = readFileSync(secretFile, 'utf8').trim()
  t.not(newSecret, secret, 'with a new secret')

  const store = await openIssuerStore(join(env.DATA_DIR, 'issuer.db'))
  t.teardown(() => store.close())
  const clients = await store.clients.listClients({ limit: 100, offset: 0 })
  t.equal(clients.length, 1, 'one client in all')
  const client = clients[0]!
  t.equal(client.name, ORDERS_CLIENT_NAME)
  t.same(client.grantTypes, ['urn:ietf:params:oauth:grant-type:token-exchange'], 'token exchange only')
  t.same(client.audiences, ['keygate-profile'])
  t.equal(client.secretHash, clientSecretHash(newSecret), 'the file holds the current secret')
})

t.test('a configured client is left alone', async (t) => {
  t.same(await ordersClientSettings({ ORDERS_CLIENT_ID: 'kgc_mine', ORDERS_CLIENT_SECRET: 'x' }), {})
  t.same(await ordersClientSettings({ ORDERS_CLIENT_SECRET_FILE: '/run/secrets/orders' }), {})
})
