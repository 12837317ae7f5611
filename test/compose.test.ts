/**
 * docker-compose.yml and the Dockerfile, checked without Docker (no engine runs on these machines): every
 * component's environment passes that component's own config validation, ports and URLs agree, the
 * secrets are shared and required, every service has a health check, and the Dockerfile copies what exists.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { BlockList } from 'node:net'
import { createRequire } from 'node:module'
import type createIgnore from '@balena/dockerignore'
import t from 'tap'
import { parse } from 'yaml'
import { loadGatewayConfig } from '../gateway/config.js'
import { feedSecret } from '../lib/auth-config.js'
import { type Component, COMPONENTS } from '../lib/config.js'
import { loadFilesConfig } from '../services/files/config.js'
import { issuerSettings, loadIssuerConfig } from '../services/issuer/config.js'
import { loadOrdersConfig } from '../services/orders/config.js'
import { loadProfileConfig } from '../services/profile/config.js'

// A CommonJS module whose types declare an ES default export: required, typed by its declaration.
const dockerignore = createRequire(import.meta.url)('@balena/dockerignore') as typeof createIgnore.default

const ROOT = new URL('../', import.meta.url).pathname
const composeText = readFileSync(`${ROOT}docker-compose.yml`, 'utf8')

/** What an operator exports before `docker compose up` (the file refuses to start without them). */
const OPERATOR_ENV = {
  KEY_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64'),
  REVOCATION_FEED_SECRET: 'feed-secret-from-the-operator',
  KEYGATE_ADMIN_PASSWORD: 'admin passphrase',
}

/** Compose's variable interpolation: `${X}`, `${X:-default}`, `${X:?error}`. */
function interpolate(text: string, env: Record<string, string>): string {
  return text.replace(
    /\$\{([A-Z0-9_]+)(?::([-?])([^}]*))?\}/g,
    (_m, name: string, op?: string, arg?: string) => {
      const value = env[name]
      if (value !== undefined && value !== '') return value
      if (op === '-') return arg ?? ''
      if (op === '?') throw new Error(`${name}: ${arg}`)
      return ''
    },
  )
}

interface Service {
  networks?: Record<string, { ipv4_address?: string } | null>
  command?: string[]
  environment?: Record<string, string>
  ports?: string[]
  healthcheck?: { test: string[] }
  depends_on?: Record<string, { condition: string }>
  build?: string
}

const compose = parse(interpolate(composeText, OPERATOR_ENV), { merge: true }) as {
  services: Record<string, Service>
  networks?: Record<string, { ipam?: { config?: Array<{ subnet?: string }> } }>
}
const keygateServices = Object.entries(compose.services).filter(([, s]) => s.command?.[0] === 'start')

const LOADERS: Record<Component, (env: Record<string, string>) => unknown> = {
  issuer: (env) => issuerSettings(loadIssuerConfig(env)),
  gateway: loadGatewayConfig,
  profile: loadProfileConfig,
  orders: loadOrdersConfig,
  files: loadFilesConfig,
}

t.test('every component runs from the one image, each under its own name', async (t) => {
  t.same(keygateServices.map(([name]) => name).sort(), [...COMPONENTS].sort())
  for (const [name, service] of keygateServices) {
    t.same(service.command, ['start', name], `${name} starts its own component`)
    t.equal(service.build, '.', `${name} builds the repository's Dockerfile`)
  }
})

t.test("each component's environment passes its own config validation", async (t) => {
  for (const [name, service] of keygateServices) {
    const env = service.environment ?? {}
    t.doesNotThrow(() => LOADERS[name as Component](env), `${name}'s settings are valid`)
  }
})

t.test('the operator must supply the secrets; nothing secret is defaulted', async (t) => {
  for (const name of Object.keys(OPERATOR_ENV)) {
    const without = { ...OPERATOR_ENV, [name]: '' }
    t.throws(
      () => interpolate(composeText, without),
      new RegExp(name),
      `compose refuses to start without ${name}`,
    )
  }
})

t.test('the header names every value the operator must export', async (t) => {
  const header = composeText.slice(0, composeText.indexOf('\nname:'))
  const required = [...composeText.matchAll(/\$\{([A-Z0-9_]+):\?/g)].map((m) => m[1]!)
  t.same([...new Set(required)].sort(), Object.keys(OPERATOR_ENV).sort())
  for (const name of required) t.match(header, `export ${name}=`, `the header shows how to set ${name}`)
})

t.test('ports, URLs and shared values agree', async (t) => {
  const portOf = (name: string) => compose.services[name]!.environment![`${name.toUpperCase()}_PORT`]
  for (const [name, service] of keygateServices) {
    const env = service.environment!
    t.ok(portOf(name), `${name} sets its port`)
    for (const target of COMPONENTS) {
      t.equal(
        env[`${target.toUpperCase()}_URL`],
        `http://${target}:${portOf(target)}`,
        `${name} finds ${target}`,
      )
    }
    const opsPort = env[`${name.toUpperCase()}_OPS_PORT`]
    t.ok(opsPort, `${name} sets its ops port`)
    t.not(opsPort, portOf(name), `${name}'s ops port is not its public port`)
    t.match(
      service.healthcheck?.test.join(' '),
      `http://127.0.0.1:${opsPort}/readyz`,
      `${name} health check asks the ops listener, inside the container`,
    )
    t.equal(env.OPS_HOST, undefined, `${name}'s ops listener stays on the container's loopback (the default)`)
    t.notMatch(JSON.stringify(service.ports ?? []), opsPort!, `${name}'s ops port is not published`)
    t.equal(env.HOST, '0.0.0.0', `${name} listens beyond loopback inside its container`)
    t.equal(env.REVOCATION_FEED, 'on', `${name} takes part in the revocation feed`)
    t.equal(
      feedSecret({ REVOCATION_FEED_SECRET: env.REVOCATION_FEED_SECRET, DATA_DIR: '/nonexistent' }),
      OPERATOR_ENV.REVOCATION_FEED_SECRET,
      `${name} shares the feed secret`,
    )
    t.equal(env.PUBLIC_URL, 'http://localhost:8080', `${name} agrees on the public address`)
  }
  t.same(
    compose.services.gateway!.ports,
    [`${portOf('gateway')}:${portOf('gateway')}`],
    'only the gateway is published',
  )
  for (const [name, service] of keygateServices)
    if (name !== 'gateway') t.notOk(service.ports, `${name} is internal`)
})

t.test('behind the gateway, only the gateway is believed about the client address', async (t) => {
  const gatewayAddress = compose.services.gateway!.networks?.default?.ipv4_address
  t.ok(gatewayAddress, 'the gateway has a fixed address on the compose network')
  const subnet = compose.networks?.default?.ipam?.config?.[0]?.subnet
  t.ok(subnet, 'the compose network has a fixed subnet')
  const [network, prefix] = subnet!.split('/') as [string, string]
  const range = new BlockList()
  range.addSubnet(network, Number(prefix))
  t.ok(range.check(gatewayAddress!), `${gatewayAddress} is inside ${subnet}`)

  const issuer = issuerSettings(loadIssuerConfig(compose.services.issuer!.environment!))
  t.same(issuer.trustProxy, [gatewayAddress], 'the issuer believes the gateway, and no one else')
  for (const name of ['profile', 'orders', 'files'] as const) {
    const env = compose.services[name]!.environment!
    t.equal(env.SERVICE_TRUST_PROXY, gatewayAddress, `${name} believes the gateway, and no one else`)
  }
  t.equal(
    loadGatewayConfig(compose.services.gateway!.environment!).GATEWAY_TRUST_PROXY,
    '',
    'the gateway, the edge, believes no forwarding header unless the operator names a proxy in front',
  )
  const behindBalancer = parse(
    interpolate(composeText, { ...OPERATOR_ENV, GATEWAY_TRUST_PROXY: '10.9.8.7' }),
    { merge: true },
  ) as typeof compose
  t.equal(behindBalancer.services.gateway!.environment!.GATEWAY_TRUST_PROXY, '10.9.8.7')
})

t.test('the issuer runs on the compose PostgreSQL', async (t) => {
  const issuer = compose.services.issuer!
  const pg = compose.services.postgres!.environment!
  const url = new URL(issuer.environment!.DATABASE_URL!)
  t.equal(url.protocol, 'postgres:')
  t.equal(url.hostname, 'postgres')
  t.equal(url.username, pg.POSTGRES_USER)
  t.equal(url.password, pg.POSTGRES_PASSWORD)
  t.equal(url.pathname, `/${pg.POSTGRES_DB}`)
  t.equal(issuer.depends_on?.postgres?.condition, 'service_healthy')
  t.ok(compose.services.postgres!.healthcheck, 'PostgreSQL has a health check')
})

t.test(
  'every service runs on the same PostgreSQL, each in its own schema; the gateway counts in Redis',
  async (t) => {
    const issuerUrl = compose.services.issuer!.environment!.DATABASE_URL
    for (const name of ['profile', 'orders', 'files'] as const) {
      const service = compose.services[name]!
      t.equal(
        service.environment?.[`${name.toUpperCase()}_DATABASE_URL`],
        issuerUrl,
        `${name} on the shared database`,
      )
      t.equal(service.depends_on?.postgres?.condition, 'service_healthy', `${name} waits for PostgreSQL`)
    }
    const gateway = compose.services.gateway!
    t.equal(new URL(gateway.environment!.REDIS_URL!).hostname, 'redis')
    t.equal(gateway.depends_on?.redis?.condition, 'service_healthy', 'the gateway waits for Redis')
    t.ok(compose.services.redis?.healthcheck, 'Redis has a health check')
    t.equal(loadGatewayConfig(gateway.environment!).REDIS_URL, 'redis://redis:6379')
  },
)

t.test(
  "orders gets a client of its own: it is given the issuer's store, not the issuer's secrets",
  async (t) => {
    const orders = compose.services.orders!
    t.equal(orders.environment?.DATABASE_URL, compose.services.issuer!.environment!.DATABASE_URL)
    t.equal(orders.depends_on?.issuer?.condition, 'service_healthy', "the issuer's migrations come first")
    t.notOk(orders.environment?.KEY_ENCRYPTION_KEY, 'no signing-key secret')
    t.notOk(orders.environment?.ORDERS_CLIENT_ID, 'the client is registered at start (bin/orders-client.ts)')
  },
)

t.test('the Dockerfile copies only what exists and starts keygate', async (t) => {
  const dockerfile = readFileSync(`${ROOT}Dockerfile`, 'utf8')
  const copies = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(/\s+/))
  t.ok(copies.length > 0)
  for (const source of copies) t.ok(existsSync(`${ROOT}${source}`), `${source} exists`)
  t.match(dockerfile, /ENTRYPOINT \["node", "--enable-source-maps", "dist\/bin\/keygate.js"\]/)
  const built = [...dockerfile.matchAll(/^COPY --from=build \/app\/(dist\/\S+)/gm)].map((m) => m[1]!)
  for (const dir of built)
    t.ok(existsSync(`${ROOT}${dir.replace(/^dist\//, '')}`), `${dir} is built from source`)
})

t.test('the image context holds the sources the Dockerfile copies, and no secret', async (t) => {
  const rules = readFileSync(`${ROOT}.dockerignore`, 'utf8')
  const inContext = dockerignore({ ignorecase: false }).add(rules).createFilter()
  const dockerfile = readFileSync(`${ROOT}Dockerfile`, 'utf8')
  const copies = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(/\s+/))
  const tracked = execFileSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
  for (const source of copies) {
    const files = tracked.filter((f) => f === source || f.startsWith(`${source}/`))
    t.ok(files.length > 0, `${source} has files`)
    const left = files.filter((f) => !inContext(f) && !/(^|\/)(keys|data)\/|\.(pem|key|secret|db)$/.test(f))
    t.same(left, [], `${source}: every source file reaches the build`)
  }
  t.ok(
    inContext('services/issuer/keys/key-set.ts'),
    "the issuer's keys/ source folder is code, not key material",
  )
  // What a developer's checkout holds after `npm start` and a test run: none of it may reach the image.
  const secrets = [
    'keys/keyset.json',
    'keys/gateway-assertion-key.json',
    'data/issuer.db',
    'data/issuer.db-wal',
    'data/revocation-feed.secret',
    'data/files-link.secret',
    'lib/data/profile.db',
    'services/issuer/keys/keyset.json',
    'test/fixtures/private.pem',
    '.env',
    'client/.env.local',
    '.git/config',
    'node_modules/pg/package.json',
    'client/node_modules/x/index.js',
    'dist/bin/keygate.js',
    'docker-compose.override.yml',
  ]
  for (const path of secrets) t.notOk(inContext(path), `${path} stays out of the build context`)
})
