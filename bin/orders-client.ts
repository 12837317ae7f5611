/**
 * `keygate start` (what `npm start` runs) gives orders an OAuth client of its own at the issuer, so that
 * orders exchanges a caller's token for one addressed to profile alone (RFC 8693) with no manual step. The
 * client is registered in the issuer's store on first start (token exchange only, audience
 * PROFILE_AUDIENCE, service `orders`: it may exchange the gateway's assertions addressed to orders); its secret is kept in `${DATA_DIR}/orders-client-secret` (mode 0600) and handed to
 * orders as ORDERS_CLIENT_SECRET_FILE, never in the environment itself. Later starts reuse it; a client an
 * admin disabled stays disabled (orders' calls to profile then fail with `exchange_refused`).
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'

/** The name the bootstrapped client is registered (and found again) under. */
export const ORDERS_CLIENT_NAME = 'orders (keygate start)'
/** The file below DATA_DIR holding its secret. */
export const ORDERS_CLIENT_SECRET_FILE_NAME = 'orders-client-secret'
/** The gateway upstream orders runs as: the gateway's assertions to it are what it exchanges. */
export const ORDERS_SERVICE = 'orders'
/** The scope orders may hand on to profile. */
export const ORDERS_CLIENT_SCOPES = ['profile']

/**
 * The settings that give orders its client: ORDERS_CLIENT_ID and ORDERS_CLIENT_SECRET_FILE, after
 * registering the client (or giving it a new secret when the file is missing or stale). Nothing when the
 * operator configured orders' client already.
 * @example
 * const env = { ...process.env, ...(await ordersClientSettings(process.env)) }
 */
export async function ordersClientSettings(
  env: Record<string, string | undefined>,
): Promise<Record<string, string>> {
  if (
    env.ORDERS_CLIENT_ID !== undefined ||
    env.ORDERS_CLIENT_SECRET !== undefined ||
    env.ORDERS_CLIENT_SECRET_FILE !== undefined
  ) {
    return {}
  }
  const { IssuerConfigSchema, issuerDatabaseUrl, CLOCK_SKEW_MS } =
    await import('../services/issuer/config.js')
  const { loadConfig } = await import('../lib/config.js')
  const { Clients, clientSecretHash, GRANT_TOKEN_EXCHANGE } =
    await import('../services/issuer/oauth/clients.js')
  const { Revocations } = await import('../services/issuer/feed/revocations.js')
  const { openIssuerStore } = await import('../services/issuer/store/issuer-store.js')
  // The issuer's settings alone, not the rules between them: orders started on its own (docker-compose.yml)
  // knows where the issuer's store is, not the issuer's secrets.
  const config = loadConfig(IssuerConfigSchema, { env })
  mkdirSync(config.DATA_DIR, { recursive: true })
  const secretFile = join(config.DATA_DIR, ORDERS_CLIENT_SECRET_FILE_NAME)
  const store = await openIssuerStore(issuerDatabaseUrl(config))
  try {
    const revocations = new Revocations({
      store,
      keepMs: config.ACCESS_TOKEN_TTL + CLOCK_SKEW_MS,
      now: Date.now,
    })
    const registry = new Clients({ store: store.clients, revocations, now: Date.now })
    const existing = (await registry.list(10_000, 0)).find((c) => c.name === ORDERS_CLIENT_NAME)
    const kept = existsSync(secretFile) ? readFileSync(secretFile, 'utf8').replace(/\r?\n$/, '') : undefined
    let id: string
    let secret: string | undefined
    if (!existing) {
      const created = await registry.create({
        name: ORDERS_CLIENT_NAME,
        grantTypes: [GRANT_TOKEN_EXCHANGE],
        scopes: ORDERS_CLIENT_SCOPES,
        audiences: [config.PROFILE_AUDIENCE],
        service: ORDERS_SERVICE,
      })
      id = created.client.id
      secret = created.secret
    } else if (kept !== undefined && existing.secretHash === clientSecretHash(kept)) {
      id = existing.id
    } else if (existing.disabledAt !== null) {
      // Disabled by an admin: not revived here. orders gets it anyway and is refused, visibly.
      id = existing.id
      if (kept === undefined) secret = randomBytes(32).toString('base64url')
    } else {
      id = existing.id
      secret = (await registry.rotateSecret(existing.id)).secret
    }
    // Registered by an earlier version, before clients named their service: orders' assertions are its own.
    if (existing && existing.service !== ORDERS_SERVICE) {
      await store.clients.setClientService(existing.id, ORDERS_SERVICE, Date.now())
    }
    if (secret !== undefined) {
      writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 })
      chmodSync(secretFile, 0o600)
    }
    return { ORDERS_CLIENT_ID: id, ORDERS_CLIENT_SECRET_FILE: secretFile }
  } finally {
    await store.close()
  }
}
