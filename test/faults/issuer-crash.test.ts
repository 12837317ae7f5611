/**
 * The issuer killed with SIGKILL in the middle of a storm of registrations, logins and refreshes through the
 * gateway, then restarted on the same data. The store must be consistent (SQLite's integrity and foreign-key
 * checks, no refresh token without its session, no session without its user, every live session with a
 * current refresh token), nothing acknowledged with a 2xx before the kill may be lost (every registered
 * account logs in, every logged-in client refreshes), and every client either refreshes or logs in again.
 */
import { join } from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { startProcesses } from '../helpers/processes.js'
import { SecretLedger } from '../helpers/secret-ledger.js'
import { VirtualUser } from '../helpers/virtual-user.js'

const WORKERS = 10
const REFRESHES_PER_LOGIN = 3
/** Storm length before the kill. */
const STORM_MS = 2_500

interface Client {
  user: VirtualUser
  registered: boolean
  /** A login or refresh of this client was acknowledged (its cookie jar holds a refresh token). */
  hasSession: boolean
  /** The last request had no answer: it was in flight when the issuer died. */
  inFlightAtKill: string | undefined
}

t.test('SIGKILL in a storm of logins and refreshes loses nothing acknowledged', async (t) => {
  const system = await startProcesses({
    env: {
      // Long enough that a refresh whose answer was lost in the crash is a sibling, not a reuse, on restart.
      REFRESH_REUSE_GRACE: '60s',
      REVOCATION_FEED: 'off',
      GATEWAY_RATE_LIMIT: '1000000/1m',
      LOGIN_MAX_FAILURES_PER_ADDRESS: '100000',
      // Every registration reaches the issuer from the gateway's address.
      REGISTRATION_RATE_LIMIT: '1000000/1m',
    },
  })
  t.teardown(() => system.stop())
  const ledger = new SecretLedger()
  const clients: Client[] = []
  const acknowledged = { registrations: 0, logins: 0, refreshes: 0 }
  let killed = false

  const worker = async (w: number) => {
    for (let n = 0; !killed; n++) {
      const client: Client = {
        user: new VirtualUser(system.urls.gateway, ledger, `storm-${w}-${n}`),
        registered: false,
        hasSession: false,
        inFlightAtKill: undefined,
      }
      clients.push(client)
      const step = async (what: string, run: () => ReturnType<VirtualUser['login']>) => {
        const r = await run()
        if (r.status === 0 || r.status === 502) client.inFlightAtKill = what
        return r.status >= 200 && r.status < 300
      }
      if (!(await step('register', () => client.user.register()))) return
      client.registered = true
      acknowledged.registrations++
      if (killed || !(await step('login', () => client.user.login()))) return
      client.hasSession = true
      acknowledged.logins++
      for (let i = 0; i < REFRESHES_PER_LOGIN; i++) {
        if (killed || !(await step('refresh', () => client.user.refresh()))) return
        acknowledged.refreshes++
      }
    }
  }
  const stormStarted = Date.now()
  const storm = Array.from({ length: WORKERS }, (_, w) => worker(w))
  await new Promise((r) => setTimeout(r, STORM_MS))
  const killedAt = Date.now()
  await system.kill('issuer', 'SIGKILL')
  killed = true
  await Promise.all(storm)
  const inFlight = clients.filter((c) => c.inFlightAtKill)
  t.ok(
    acknowledged.registrations > 0 && acknowledged.refreshes > 0,
    'the storm was under way when the issuer died',
  )

  // The store as the crash left it.
  const db = new Database(join(system.dataDir, 'issuer.db'))
  try {
    t.strictSame(db.pragma('integrity_check', { simple: true }), 'ok', 'SQLite integrity check: ok')
    t.strictSame(db.pragma('foreign_key_check'), [], 'no foreign key violation')
    const count = (sql: string) => (db.prepare(sql).get() as { n: number }).n
    t.equal(
      count(
        'select count(*) as n from refresh_tokens r left join sessions s on s.id = r.session_id where s.id is null',
      ),
      0,
      'no refresh token without its session',
    )
    t.equal(
      count('select count(*) as n from sessions s left join users u on u.id = s.user_id where u.id is null'),
      0,
      'no session without its user',
    )
    t.equal(
      count(
        `select count(*) as n from sessions s where s.revoked_at is null and not exists
           (select 1 from refresh_tokens r where r.session_id = s.id and r.superseded_at is null)`,
      ),
      0,
      'every live session has a current refresh token',
    )
    t.ok(
      count('select count(*) as n from users') >= acknowledged.registrations,
      'every acknowledged account is stored',
    )
  } finally {
    db.close()
  }

  const restartedAt = Date.now()
  await system.start('issuer')
  const restartMs = Date.now() - restartedAt

  // Nothing acknowledged is lost, and every client can carry on.
  const lost: string[] = []
  for (const client of clients) {
    const { user } = client
    if (client.hasSession) {
      const r = await user.refresh()
      if (r.status !== 200)
        lost.push(
          `${user.email}: refresh after restart ${r.status} ${r.code ?? ''} (in flight: ${client.inFlightAtKill ?? 'nothing'})`,
        )
    }
    if (client.registered) {
      const again = new VirtualUser(system.urls.gateway, ledger, user.email.split('@')[0])
      const r = await again.login()
      if (r.status !== 200) lost.push(`${user.email}: login after restart ${r.status} ${r.code ?? ''}`)
    } else {
      // Its registration was in flight: either it was stored (login works) or it can be made again.
      const r = await user.login()
      const made =
        r.status === 200 || ((await user.register()).status === 202 && (await user.login()).status === 200)
      if (!made) lost.push(`${user.email}: neither logs in nor registers after restart`)
    }
  }
  t.strictSame(
    lost,
    [],
    `${clients.length} clients: every acknowledged account logs in, every session refreshes`,
  )
  t.comment(
    `issuer SIGKILL after ${killedAt - stormStarted} ms of storm (${WORKERS} clients at a time): acknowledged ${acknowledged.registrations} registrations, ${acknowledged.logins} logins, ${acknowledged.refreshes} refreshes; ${inFlight.length} requests in flight at the kill (${inFlight.map((c) => c.inFlightAtKill).join(', ')}); restarted and ready in ${restartMs} ms; ${lost.length} lost`,
  )
  t.strictSame(ledger.leaksIn('system', system.output()), [], 'no secret in any log')
})
