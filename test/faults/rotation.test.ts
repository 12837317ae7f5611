/**
 * Key rotation under sustained load through the gateway (ARCHITECTURE principle 4: rotation is a schedule,
 * not an event): users keep calling the API and refreshing while an admin rotates the issuer's signing key
 * three times, as fast as the publication lead allows. Every response must be 2xx, with tokens of at least
 * three keys accepted along the way.
 */
import t from 'tap'
import { type ProcessSystem, startProcesses } from '../helpers/processes.js'
import { SecretLedger } from '../helpers/secret-ledger.js'
import { HttpClient } from '../helpers/system.js'
import { type Answer, VirtualUser } from '../helpers/virtual-user.js'

const ADMIN = { email: 'admin@example.com', password: 'admin passphrase for rotation' }
const USERS = 6
const ROTATIONS = 3
/** Each user refreshes after this many API calls, so new tokens come from the newest key. */
const CALLS_PER_REFRESH = 10

/** Settings short enough to rotate every few seconds, in the order the issuer requires them. */
export const FAST_KEYS_ENV = {
  JWKS_MAX_AGE: '1s',
  KEY_PUBLISH_LEAD: '2s',
  JWKS_MIN_TTL: '500ms',
  JWKS_COOLDOWN: '1s',
  GATEWAY_RATE_LIMIT: '1000000/1m',
  KEYGATE_ADMIN_EMAIL: ADMIN.email,
  KEYGATE_ADMIN_PASSWORD: ADMIN.password,
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

let system: ProcessSystem
t.before(async () => {
  system = await startProcesses({ env: { ...FAST_KEYS_ENV, REVOCATION_FEED: 'off' } })
})
t.teardown(() => system?.stop())

t.test('rotating the signing key three times under load costs no request', async (t) => {
  const ledger = new SecretLedger()
  ledger.add('password', ADMIN.password)
  const admin = new HttpClient(system.urls.issuer)
  const adminToken = (await admin.call('POST', '/auth/login', { body: ADMIN })).json.access_token as string
  ledger.add('access token', adminToken)

  const users = Array.from(
    { length: USERS },
    (_, i) => new VirtualUser(system.urls.gateway, ledger, `rot-${i}`),
  )
  for (const user of users) {
    t.equal((await user.register()).status, 202)
    t.equal((await user.login()).status, 200)
  }
  const failures: string[] = []
  const kidsAccepted = new Set<string>()
  let requests = 0
  let stop = false
  const record = (what: string, r: Answer, kid?: string) => {
    requests++
    if (r.status < 200 || r.status >= 300) failures.push(`${what}: ${r.status} ${r.code ?? ''}`)
    else if (kid) kidsAccepted.add(kid)
  }
  const load = users.map(async (user) => {
    for (let i = 1; !stop; i++) {
      const kid = user.kid
      record('GET /api/profile/me', await user.call('GET', '/api/profile/me'), kid)
      if (i % 3 === 0) record('GET /api/orders', await user.call('GET', '/api/orders'), kid)
      if (i % CALLS_PER_REFRESH === 0) record('refresh', await user.refresh())
    }
  })

  const rotations: string[] = []
  await sleep(500)
  while (rotations.length < ROTATIONS) {
    const r = await admin.call('POST', '/admin/keys/rotate', { token: adminToken })
    if (r.status === 200) {
      rotations.push(
        (r.json.keys as Array<{ kid: string; state: string }>).find((k) => k.state === 'active')!.kid,
      )
      await sleep(300)
    } else if (r.json.code === 'KG_KEY_ROTATION_TOO_EARLY') {
      await sleep(250)
    } else {
      t.fail(`rotation answered ${r.status} ${r.text.slice(0, 200)}`)
      break
    }
  }
  // Let the last key sign for a while before the load stops.
  await sleep(2_500)
  stop = true
  await Promise.all(load)

  t.equal(rotations.length, ROTATIONS, `${ROTATIONS} rotations`)
  t.strictSame(failures, [], `${requests} requests during the rotations, none refused or failed`)
  t.ok(kidsAccepted.size >= ROTATIONS, `tokens signed by ${kidsAccepted.size} different keys were accepted`)
  t.comment(
    `rotation under load: ${requests} requests by ${USERS} users, ${ROTATIONS} rotations, ${failures.length} non-2xx, ${kidsAccepted.size} keys seen`,
  )
  t.strictSame(ledger.leaksIn('system', system.output()), [], 'no secret in any log')
})
