/**
 * `keygate start` registers orders' client on first start and reuses it: same client, same secret file; a lost
 * secret file gets a new secret; a configured client is left alone. `keygate start orders` on its own (one
 * container per component, docker-compose.yml) does the same when it is given the issuer's store.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import t from 'tap'
import { ORDERS_CLIENT_NAME, ordersClientSettings } from '../../bin/orders-client.js'
import { clientSecretHash } from '../../services/issuer/oauth/clients.js'
import { openIssuerStore } from '../../services/issuer/store/issuer-store.js'
import { postgresUnavailable, testDatabase } from '../helpers/postgres.js'

const ROOT = new URL('../../', import.meta.url).pathname

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

t.test(
  "orders started alone registers its client in the issuer's PostgreSQL store, without the issuer's secrets",
  { skip: await postgresUnavailable() },
  async (t) => {
    const db = await testDatabase(t)
    const dir = mkdtempSync(join(tmpdir(), 'kg-orders-alone-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const dataDir = join(dir, 'data')
    // As in docker-compose.yml: the issuer's DATABASE_URL, none of its secrets (no KEY_ENCRYPTION_KEY).
    const env: Record<string, string | undefined> = {
      ...process.env,
      DATABASE_URL: db.url,
      DATA_DIR: dataDir,
      KEYS_DIR: join(dir, 'keys'),
      ORDERS_DATABASE_URL: join(dataDir, 'orders.db'),
      ORDERS_PORT: '0',
      ORDERS_OPS_PORT: '0',
      REVOCATION_FEED: 'off',
      LOG_LEVEL: 'info',
    }
    delete env.KEY_ENCRYPTION_KEY
    delete env.KEYGATE_CONFIG
    const child = spawn(
      process.execPath,
      ['--conditions=keygate-source', '--import', 'tsx', 'bin/keygate.ts', 'start', 'orders'],
      { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'inherit'] },
    )
    const exited = once(child, 'exit')
    t.teardown(async () => {
      child.kill('SIGTERM')
      await exited
    })
    let listening = false
    for await (const line of createInterface({ input: child.stdout! })) {
      if (line.includes('Server listening')) {
        listening = true
        break
      }
    }
    t.ok(listening, 'orders listens')

    const store = await openIssuerStore(db.url)
    t.teardown(() => store.close())
    const clients = await store.clients.listClients({ limit: 100, offset: 0 })
    t.equal(clients.length, 1, "one client in the issuer's store")
    t.equal(clients[0]!.name, ORDERS_CLIENT_NAME)
    t.equal(clients[0]!.service, 'orders', "it may exchange the gateway's assertions to orders")
    const secret = readFileSync(join(dataDir, 'orders-client-secret'), 'utf8').trim()
    t.equal(clients[0]!.secretHash, clientSecretHash(secret), "orders' data directory holds its secret")
  },
)
