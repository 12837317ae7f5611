/**
 * A soak: mixed traffic through the gateway for a while (profile reads and writes, orders, uploads and
 * one-time downloads, refreshes, logout and login again, and forged tokens that must be refused), with every
 * component its own process. No unexpected answer; the gateway's memory stays bounded and its open file
 * descriptors and sockets do not grow (read from /proc at the start and the end of the run, and once idle).
 *
 * `npm test` runs a short soak (SOAK_DURATION, default 15s after a 5 s warm-up); `npm run soak` runs 3m.
 */
import t from 'tap'
import { durationMs } from '../../lib/config.js'
import { processStats, type ProcessStats, startProcesses } from '../helpers/processes.js'
import { SecretLedger } from '../helpers/secret-ledger.js'
import { type Answer, VirtualUser } from '../helpers/virtual-user.js'

const DURATION_MS = durationMs(process.env.SOAK_DURATION ?? '15s', 'SOAK_DURATION')
/** Long enough for every connection pool to reach the size this load needs. */
const WARM_UP_MS = 5_000
const USERS = 8
/** Bounds for a healthy process, generous on purpose: these catch leaks, not noise. */
const MAX_RSS_GROWTH_KB = 100 * 1024
const MAX_FD_GROWTH = 20

type Action = (user: VirtualUser, n: number) => Promise<Array<[string, Answer, number[]]>>

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** What users do, with weights, and the statuses each step may answer. */
const ACTIONS: Array<[number, string, Action]> = [
  [40, 'read profile', async (u) => [['GET /api/profile/me', await u.call('GET', '/api/profile/me'), [200]]]],
  [
    10,
    'write profile',
    async (u, n) => [
      [
        'PUT /api/profile/me',
        await u.call('PUT', '/api/profile/me', { body: { displayName: `User ${n}` } }),
        [200],
      ],
    ],
  ],
  [
    10,
    'order',
    async (u, n) => [
      [
        'POST /api/orders',
        await u.call('POST', '/api/orders', { body: { item: `item ${n}`, quantity: 1 + (n % 5) } }),
        [201],
      ],
    ],
  ],
  [10, 'list orders', async (u) => [['GET /api/orders', await u.call('GET', '/api/orders'), [200]]]],
  [5, 'list files', async (u) => [['GET /api/files', await u.call('GET', '/api/files'), [200]]]],
  [
    5,
    'upload and download once',
    async (u, n) => {
      const name = `file-${n % 20}.txt`
      const put = await u.call('PUT', `/api/files/${name}`, {
        raw: `content ${n}`,
        headers: { 'content-type': 'text/plain' },
      })
      const link = await u.call('POST', `/api/files/${name}/link`)
      const path = new URL(String(link.json.url ?? 'http://x/none')).pathname
      u.ledger?.add('link', path.split('/').pop())
      const first = await u.call('GET', path, { anonymous: true })
      const second = await u.call('GET', path, { anonymous: true })
      return [
        ['PUT /api/files/:name', put, [200, 201]],
        ['POST /api/files/:name/link', link, [200]],
        ['GET download (first)', first, [200]],
        ['GET download (again)', second, [410]],
      ]
    },
  ],
  [8, 'refresh', async (u) => [['POST /auth/refresh', await u.refresh(), [200]]]],
  [
    10,
    'forged token',
    async (u, n) => {
      const [h, p, s] = u.token!.split('.') as [string, string, string]
      const forged =
        n % 2
          ? `${h}.${p}.${s.slice(0, -4)}AAAA`
          : `${Buffer.from('{"alg":"none"}').toString('base64url')}.${p}.`
      u.ledger?.add('hostile token', forged)
      const r = await u.call('GET', '/api/profile/me', {
        headers: { authorization: `Bearer ${forged}` },
        anonymous: true,
      })
      return [['GET with a forged token', r, [401]]]
    },
  ],
  [
    2,
    'logout and login',
    async (u) => [
      [
        'POST /auth/logout',
        await u.call('POST', '/auth/logout', { headers: { 'x-csrf-token': u.csrf ?? '' }, anonymous: true }),
        [204],
      ],
      ['POST /auth/login', await u.login(), [200]],
    ],
  ],
]
const TOTAL_WEIGHT = ACTIONS.reduce((sum, [w]) => sum + w, 0)

function pick(n: number): Action {
  let roll = (n * 7919) % TOTAL_WEIGHT
  for (const [weight, , action] of ACTIONS) {
    if (roll < weight) return action
    roll -= weight
  }
  return ACTIONS[0]![2]
}

t.test(`soak: ${DURATION_MS / 1000} s of mixed traffic through the gateway`, async (t) => {
  const system = await startProcesses({ env: { GATEWAY_RATE_LIMIT: '1000000/1m' } })
  t.teardown(() => system.stop())
  const ledger = new SecretLedger()
  const users = Array.from(
    { length: USERS },
    (_, i) => new VirtualUser(system.urls.gateway, ledger, `soak-${i}`),
  )
  for (const user of users) {
    await user.register()
    t.equal((await user.login()).status, 200, 'a user logged in')
  }

  const counts = new Map<string, number>()
  const unexpected = new Map<string, number>()
  let stop = false
  const traffic = users.map(async (user, u) => {
    for (let n = u; !stop; n += USERS) {
      for (const [step, answer, allowed] of await pick(n)(user, n)) {
        counts.set(step, (counts.get(step) ?? 0) + 1)
        if (!allowed.includes(answer.status)) {
          const key = `${step}: ${answer.status} ${answer.code ?? ''}`
          unexpected.set(key, (unexpected.get(key) ?? 0) + 1)
        }
      }
    }
  })

  const gateway = system.pid('gateway')
  await sleep(WARM_UP_MS)
  const start = processStats(gateway)
  const samples: ProcessStats[] = [start]
  const started = Date.now()
  while (Date.now() - started < DURATION_MS) {
    await sleep(Math.min(5_000, DURATION_MS - (Date.now() - started)))
    samples.push(processStats(gateway))
  }
  const end = processStats(gateway)
  stop = true
  await Promise.all(traffic)
  // Once idle nothing may be opened any more. (Kept-alive connections stay open for the servers' Keep-Alive
  // hint, 72 s with Fastify, which undici honours over its own shorter default: they close later, not here.)
  await sleep(5_000)
  const idle = processStats(gateway)

  const requests = [...counts.values()].reduce((a, b) => a + b, 0)
  t.strictSame(Object.fromEntries(unexpected), {}, `${requests} requests, every answer as expected`)
  t.ok(
    end.rssKb - start.rssKb <= MAX_RSS_GROWTH_KB,
    `gateway RSS ${mb(start.rssKb)} → ${mb(end.rssKb)} (max ${mb(Math.max(...samples.map((s) => s.rssKb)))})`,
  )
  t.ok(end.fds - start.fds <= MAX_FD_GROWTH, `gateway file descriptors ${start.fds} → ${end.fds} under load`)
  t.ok(
    end.sockets - start.sockets <= MAX_FD_GROWTH,
    `gateway sockets ${start.sockets} → ${end.sockets} under load`,
  )
  t.ok(idle.sockets <= end.sockets, `gateway sockets once idle: ${idle.sockets} (fds ${idle.fds})`)
  t.comment(
    `soak ${DURATION_MS / 1000} s, ${USERS} users: ${requests} requests (${Math.round(requests / ((Date.now() - started) / 1000))}/s), ` +
      `${[...unexpected.values()].reduce((a, b) => a + b, 0)} unexpected; gateway RSS ${mb(start.rssKb)} → ${mb(end.rssKb)}, ` +
      `fds ${start.fds} → ${end.fds} (idle ${idle.fds}), sockets ${start.sockets} → ${end.sockets} (idle ${idle.sockets}); ` +
      `by step: ${[...counts].map(([s, c]) => `${s} ${c}`).join(', ')}`,
  )
  const output = system.output()
  t.strictSame(
    ledger.leaksIn('system', output),
    [],
    `no secret among ${ledger.size} in ${output.split('\n').length} log lines`,
  )
})

function mb(kb: number): string {
  return `${(kb / 1024).toFixed(1)} MiB`
}
