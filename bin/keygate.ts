/**
 * The `keygate` command line.
 *
 *   keygate start                   start every component, each its own process (what `npm start` runs)
 *   keygate start <component>       start one: issuer, gateway, profile, orders or files
 *   keygate start gateway --workers N   the gateway as N processes on one port (or GATEWAY_WORKERS)
 *   keygate keys list               list the signing keys and their states
 *   keygate keys rotate             promote the next key, retire the active one
 *   keygate keys revoke <kid>       withdraw a key at once (emergency)
 *   keygate clients create|list|rotate-secret <id>|disable <id>
 *                                   registered OAuth clients (service identities)
 *
 * Settings come from the environment (and KEYGATE_CONFIG), as for the issuer itself; `keys` works on the
 * same key set as a running issuer (KEYS_DIR, or the PostgreSQL database of DATABASE_URL with
 * KEY_ENCRYPTION_KEY), which picks the change up within a second.
 */
import { parseArgs } from 'node:util'
import { type Component, COMPONENTS, componentSchema, loadConfig } from '../lib/config.js'
import { KeygateError } from '../lib/errors.js'
import type { IssuerSettings } from '../services/issuer/config.js'
import type { KeyAdministration, KeyView } from '../services/issuer/keys/key-administration.js'
import type { KeySet } from '../services/issuer/keys/key-set.js'

// The issuer's modules (Fastify, argon2, database drivers) load only for the command that needs them, so
// usage errors and `--help` answer at once.
const issuerConfig = () => import('../services/issuer/config.js')

const USAGE = `Usage:
  keygate start                   start every component, each its own process
  keygate start <component>       start one: issuer, gateway, profile, orders or files
  keygate start gateway --workers N
                                  the gateway as N processes on one port (default GATEWAY_WORKERS, 1)
  keygate keys list               list the signing keys and their states
  keygate keys rotate             promote the next key and retire the active one
  keygate keys revoke <kid>       withdraw a key at once and promote the next one
  keygate clients create --name <name> --audiences <a,b> [--scopes <s,t>]
                         [--grant-types client_credentials,urn:ietf:params:oauth:grant-type:token-exchange]
                         [--jwks-file <public JWKS file> | --jwks-uri <url>] [--service <upstream>]
                                  register a client; its secret (without keys) is printed once
  keygate clients list            list the registered clients
  keygate clients rotate-secret <client_id>
                                  give a client a new secret (printed once); the old one stops working
  keygate clients disable <client_id>
                                  disable a client and revoke the tokens it holds for itself

Settings are read from the environment (and the JSON file named by KEYGATE_CONFIG).`

/** Exit code for a command line that could not be understood. */
const EXIT_USAGE = 2

class UsageError extends Error {}

const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  workers: { type: 'string' },
  name: { type: 'string' },
  'grant-types': { type: 'string' },
  scopes: { type: 'string' },
  audiences: { type: 'string' },
  'jwks-file': { type: 'string' },
  'jwks-uri': { type: 'string' },
  service: { type: 'string' },
} as const

/** The options of `clients create` alone. */
const CLIENT_OPTIONS = [
  'name',
  'grant-types',
  'scopes',
  'audiences',
  'jwks-file',
  'jwks-uri',
  'service',
] as const

/**
 * The arguments after `keys revoke`, taken as they are: a kid is base64url, so about one in 64 starts with
 * `-` and would otherwise be read as an option — on the emergency path. A `--` before the kid is still
 * accepted. Returns the arguments left to parse as options and commands, and the kids.
 */
function splitKidArguments(argv: string[]): { head: string[]; kids: string[] } {
  const { tokens } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: false,
    tokens: true,
    options: OPTIONS,
  })
  const positionals = tokens.filter((t) => t.kind === 'positional')
  const [command, action] = positionals
  if (command?.value !== 'keys' || action?.value !== 'revoke') return { head: argv, kids: [] }
  const kids = argv.slice(action.index + 1)
  return { head: argv.slice(0, action.index + 1), kids: kids[0] === '--' ? kids.slice(1) : kids }
}

async function main(argv: string[]): Promise<number> {
  const { head, kids } = splitKidArguments(argv)
  const parsed = parseArgs({ args: head, allowPositionals: true, strict: true, options: OPTIONS })
  const values = parsed.values
  const positionals = [...parsed.positionals, ...kids]
  if (values.help) {
    console.log(USAGE)
    return 0
  }
  const [command, ...rest] = positionals
  if (values.workers !== undefined && (command !== 'start' || rest[0] !== 'gateway')) {
    throw new UsageError('--workers applies to start gateway only')
  }
  const clientOptions = CLIENT_OPTIONS.filter((o) => values[o] !== undefined)
  if (clientOptions.length > 0 && (command !== 'clients' || rest[0] !== 'create')) {
    throw new UsageError(`--${clientOptions[0]} applies to clients create only`)
  }
  if (command === 'start' || command === 'keys' || command === 'clients') await knowEverySetting()
  switch (command) {
    case 'clients':
      return clients(rest, values)
    case 'start':
      return start(rest, values.workers === undefined ? undefined : workerCount(values.workers))
    case 'keys':
      return keys(rest)
    default:
      throw new UsageError(command ? `unknown command: ${command}` : 'no command given')
  }
}

/**
 * One KEYGATE_CONFIG file serves every component, so each checks the file's keys against every component's
 * settings, not only its own: their schemas are loaded (which makes their names known to lib/config.ts)
 * before any config is read. Skipped without a file, where nothing is checked.
 */
async function knowEverySetting(): Promise<void> {
  if (process.env.KEYGATE_CONFIG === undefined) return
  await Promise.all([
    issuerConfig(),
    import('../gateway/config.js'),
    import('../services/profile/config.js'),
    import('../services/orders/config.js'),
    import('../services/files/config.js'),
  ])
}

/** `--workers`: a whole number of processes, at least 1. */
function workerCount(value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1 || n > MAX_WORKERS) {
    throw new UsageError(`--workers must be a whole number from 1 to ${MAX_WORKERS}`)
  }
  return n
}

/** Most gateway processes `--workers` starts. */
const MAX_WORKERS = 256

/**
 * How each component starts: its config loader and entry point, loaded only when it is the one asked for.
 * `workers` (gateway only) overrides GATEWAY_WORKERS.
 */
const ENTRIES: Record<Component, (workers?: number) => Promise<unknown>> = {
  issuer: async () => {
    const { loadIssuerConfig } = await issuerConfig()
    const { startIssuer } = await import('../services/issuer/server.js')
    return startIssuer(loadIssuerConfig())
  },
  gateway: async (workers) => {
    const { loadGatewayConfig } = await import('../gateway/config.js')
    const config = loadGatewayConfig()
    const { isWorker, followPrimary, runWorkers } = await import('./workers.js')
    const count = workers ?? config.GATEWAY_WORKERS
    if (count > 1 && !isWorker()) {
      // The primary only hands out connections; each worker builds and listens as a single process does.
      process.exitCode = await runWorkers(count, 'gateway')
      return
    }
    if (isWorker()) followPrimary()
    const { startGateway } = await import('../gateway/server.js')
    return startGateway(config)
  },
  profile: async () => {
    const { loadProfileConfig } = await import('../services/profile/config.js')
    const { startProfile } = await import('../services/profile/server.js')
    return startProfile(loadProfileConfig())
  },
  orders: async () => {
    const { loadOrdersConfig } = await import('../services/orders/config.js')
    const { startOrders } = await import('../services/orders/server.js')
    return startOrders(loadOrdersConfig())
  },
  files: async () => {
    const { loadFilesConfig } = await import('../services/files/config.js')
    const { startFiles } = await import('../services/files/server.js')
    return startFiles(loadFilesConfig())
  },
}

async function start(args: string[], workers: number | undefined): Promise<number> {
  if (args.length > 1) throw new UsageError('start takes at most one component')
  const component = args[0]
  if (component === undefined) return startAll()
  if (!(COMPONENTS as string[]).includes(component)) throw new UsageError(`unknown component: ${component}`)
  // orders alone (one container each, as in docker-compose.yml): it registers its own client when it is told
  // where the issuer's store is; otherwise ORDERS_CLIENT_ID and its secret come from the operator.
  if (component === 'orders' && (process.env.DATABASE_URL ?? process.env.DATABASE_URL_FILE) !== undefined) {
    const { ordersClientSettings } = await import('./orders-client.js')
    Object.assign(process.env, await ordersClientSettings(process.env))
  }
  await ENTRIES[component as Component](workers)
  return -1
}

/** Every component as a child process, until Ctrl-C. */
async function startAll(): Promise<number> {
  const { supervise } = await import('./supervisor.js')
  const config = loadConfig(componentSchema({}))
  const admin = process.env.KEYGATE_ADMIN_EMAIL
  const gw = config.GATEWAY_URL
  const { demoBuilt } = await import('../gateway/static-app.js')
  const demo = demoBuilt()
  const banner = (ops: Partial<Record<Component, string>>) =>
    [
      '',
      `keygate is up. The gateway is the one door: ${gw}`,
      demo
        ? `  Demo app: open ${gw}/ in a browser (register, log in, call the services)`
        : '  Demo app: not built (npm run build:client, or start with npm start), then at / on the gateway',
      admin
        ? `  Admin: log in as ${admin} with KEYGATE_ADMIN_PASSWORD`
        : '  No admin account: set KEYGATE_ADMIN_EMAIL and KEYGATE_ADMIN_PASSWORD to create one',
      '  Stop everything with Ctrl-C.',
      '',
      `  issuer ${config.ISSUER_URL} · profile ${config.PROFILE_URL} · orders ${config.ORDERS_URL} · files ${config.FILES_URL}`,
      `  ops listeners (/readyz, /metrics): ${COMPONENTS.map((c) => `${c} ${ops[c]}`).join(' · ')}`,
      '',
      'Or with curl, through the gateway (the README walks through the rest):',
      `  curl -X POST ${gw}/auth/register -H 'content-type: application/json' -d '{"email":"you@example.com","password":"a long passphrase"}'`,
      `  curl -X POST ${gw}/auth/login -H 'content-type: application/json' -d '{"email":"you@example.com","password":"a long passphrase"}'`,
      '',
    ].join('\n')
  // The gateway in front of everyone on loopback: the others believe its X-Forwarded-For.
  const { localGatewayTrust } = await import('./local-proxies.js')
  const urls = {
    issuer: config.ISSUER_URL,
    profile: config.PROFILE_URL,
    orders: config.ORDERS_URL,
    files: config.FILES_URL,
  }
  // orders exchanges callers' tokens for tokens addressed to profile: its client, registered on first start.
  const { ordersClientSettings } = await import('./orders-client.js')
  const ordersClient = await ordersClientSettings(process.env)
  return supervise({
    banner,
    env: { ...process.env, ...localGatewayTrust(process.env, urls), ...ordersClient },
  })
}

async function keys(args: string[]): Promise<number> {
  const [action, ...rest] = args
  const expected = action === 'revoke' ? 1 : 0
  if (!['list', 'rotate', 'revoke'].includes(action ?? '') || rest.length !== expected) {
    throw new UsageError(
      action === 'revoke' ? 'keys revoke needs exactly one kid' : 'keys needs list, rotate or revoke',
    )
  }
  const { loadIssuerConfig, issuerSettings } = await issuerConfig()
  const { KeyFile } = await import('../services/issuer/keys/key-file.js')
  const { listKeys } = await import('../services/issuer/keys/key-administration.js')
  const config = loadIssuerConfig()
  const settings = issuerSettings(config)
  if (action === 'list' && settings.keyStorage === 'file') {
    // Read-only: the file as it stands, without generating or rotating anything (nor opening the database).
    const file = new KeyFile(settings.keysDir)
    const { doc } = await file.read()
    if (doc.keys.length) printKeys(listKeys(doc))
    else console.log(`no key set yet in ${file.path} (the issuer generates one on first start)`)
    return 0
  }
  return withKeyAdministration(settings, async (admin, keySet) => {
    if (action === 'list') {
      const { doc } = await keySet.storage.read()
      if (doc.keys.length) printKeys(listKeys(doc))
      else
        console.log(`no key set yet in ${keySet.storage.location} (the issuer generates one on first start)`)
      return 0
    }
    if (action === 'rotate') {
      await admin.rotate()
      console.log('rotated')
    } else {
      const revoked = await admin.revoke(rest[0]!)
      console.log(`revoked ${revoked.kid}`)
    }
    printKeys(admin.list())
    return 0
  })
}

/**
 * Runs `fn` with key administration over the issuer's store: revocations are recorded there, and with
 * PostgreSQL the key set lives there too, shared with every running instance.
 */
async function withKeyAdministration<R>(
  settings: IssuerSettings,
  fn: (admin: KeyAdministration, keySet: KeySet) => Promise<R>,
): Promise<R> {
  const { CLOCK_SKEW_MS } = await issuerConfig()
  const { KeyAdministration } = await import('../services/issuer/keys/key-administration.js')
  const { KeySet } = await import('../services/issuer/keys/key-set.js')
  const { keyStorageFor } = await import('../services/issuer/keys/configured-key-storage.js')
  const { Revocations } = await import('../services/issuer/feed/revocations.js')
  const { openIssuerStore } = await import('../services/issuer/store/issuer-store.js')
  const store = await openIssuerStore(settings.databaseUrl)
  try {
    const keySet = new KeySet({ storage: keyStorageFor(settings, store), schedule: settings, now: Date.now })
    // No fan-out here: running instances pick the revocation up through NOTIFY or their poll.
    const revocations = new Revocations({
      store,
      keepMs: settings.accessTokenTtlMs + CLOCK_SKEW_MS,
      now: Date.now,
    })
    return await fn(new KeyAdministration({ keys: keySet, revocations }), keySet)
  } finally {
    await store.close()
  }
}

type ClientOptionValues = Partial<Record<(typeof CLIENT_OPTIONS)[number], string>>

/** `keygate clients …` on the issuer's store; a running issuer sees the change at its next request. */
async function clients(args: string[], options: ClientOptionValues): Promise<number> {
  const [action, ...rest] = args
  const needsId = action === 'rotate-secret' || action === 'disable'
  if (
    !['create', 'list', 'rotate-secret', 'disable'].includes(action ?? '') ||
    rest.length !== (needsId ? 1 : 0)
  ) {
    throw new UsageError(
      needsId
        ? `clients ${action} needs exactly one client_id`
        : 'clients needs create, list, rotate-secret or disable',
    )
  }
  if (action === 'create' && (!options.name || !options.audiences)) {
    throw new UsageError('clients create needs --name and --audiences')
  }
  const { loadIssuerConfig, issuerSettings, CLOCK_SKEW_MS } = await issuerConfig()
  const { Clients, clientView, GRANT_CLIENT_CREDENTIALS } =
    await import('../services/issuer/oauth/clients.js')
  const { Revocations } = await import('../services/issuer/feed/revocations.js')
  const { openIssuerStore } = await import('../services/issuer/store/issuer-store.js')
  const settings = issuerSettings(loadIssuerConfig())
  const store = await openIssuerStore(settings.databaseUrl)
  try {
    // No fan-out here: running instances pick a disabled client's revocation up through NOTIFY or their poll.
    const revocations = new Revocations({
      store,
      keepMs: settings.accessTokenTtlMs + CLOCK_SKEW_MS,
      now: Date.now,
    })
    const registry = new Clients({ store: store.clients, revocations, now: Date.now })
    const print = (view: ReturnType<typeof clientView>, secret?: string) => {
      console.log(`client_id: ${view.client_id}`)
      if (secret !== undefined) console.log(`client_secret: ${secret}   (shown this once; keep it safe)`)
      console.log(`name: ${view.name}`)
      console.log(
        `auth: ${view.token_endpoint_auth_method}${view.disabled_at ? `  DISABLED ${view.disabled_at}` : ''}`,
      )
      console.log(`grant types: ${view.grant_types.join(' ')}`)
      console.log(`scopes: ${view.scopes.join(' ') || '-'}`)
      console.log(`audiences: ${view.audiences.join(' ')}`)
      if (view.service) console.log(`service: ${view.service}`)
    }
    switch (action) {
      case 'create': {
        const { commaList } = await import('../lib/config.js')
        const { readFileSync } = await import('node:fs')
        const { client, secret } = await registry.create({
          name: options.name!,
          grantTypes: commaList(options['grant-types'] ?? GRANT_CLIENT_CREDENTIALS),
          scopes: commaList(options.scopes ?? ''),
          audiences: commaList(options.audiences!),
          ...(options['jwks-file'] === undefined
            ? {}
            : {
                jwks: JSON.parse(readFileSync(options['jwks-file'], 'utf8')) as {
                  keys: Record<string, unknown>[]
                },
              }),
          ...(options['jwks-uri'] === undefined ? {} : { jwksUri: options['jwks-uri'] }),
          ...(options.service === undefined ? {} : { service: options.service }),
        })
        print(clientView(client), secret)
        return 0
      }
      case 'list': {
        const all = await registry.list(10_000, 0)
        if (all.length === 0) console.log('no clients registered')
        for (const [i, client] of all.entries()) {
          if (i > 0) console.log('')
          print(clientView(client))
        }
        return 0
      }
      case 'rotate-secret': {
        const { client, secret } = await registry.rotateSecret(rest[0]!)
        print(clientView(client), secret)
        return 0
      }
      default: {
        print(clientView(await registry.disable(rest[0]!)))
        return 0
      }
    }
  } finally {
    await store.close()
  }
}

function printKeys(keys: KeyView[]): void {
  const rows = keys.map((k) => [
    k.kid,
    k.state,
    k.created_at,
    k.activated_at ?? '-',
    k.state === 'retired' || k.state === 'revoked' ? (k.remove_at ?? '-') : '-',
  ])
  const header = ['KID', 'STATE', 'CREATED', 'ACTIVATED', 'REMOVED AT']
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  for (const row of [header, ...rows])
    console.log(
      row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
}

main(process.argv.slice(2)).then(
  (code) => {
    // -1: a server is running; it exits on its own signal handling.
    if (code >= 0) process.exitCode = code
  },
  (err: unknown) => {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`keygate: ${(err as Error).message}\n\n${USAGE}`)
      process.exitCode = EXIT_USAGE
    } else if (err instanceof KeygateError) {
      console.error(`keygate: ${err.message} (${err.code})`)
      process.exitCode = 1
    } else {
      console.error((err as Error).message.replace(/^(keygate: )?/, 'keygate: '))
      process.exitCode = 1
    }
  },
)
