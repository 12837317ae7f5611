/**
 * The proxy scenarios of the issue: (a) a few users with reused tokens, (b) a never-seen token on every
 * request, (c) keys rotated twice during the run, (d) a 1,000-route table, and the gateway as 1 and 2
 * processes. Stacks of one scenario are started together (idle ones cost nothing), warmed up, then loaded in
 * rounds — run 1 of every stack, then run 2 — so drift on a shared machine spreads over all of them.
 */
import { join } from 'node:path'
import { type BenchKey, generateBenchKey, mintBenchToken } from './bench-issuer.js'
import { runLoad } from './load/index.js'
import { freePort, type ServerProcess } from './processes.js'
import { rssBytes } from './machine.js'
import { type CaseRun, type Ratio, runOf, type ScenarioReport } from './report.js'
import { type BenchContext, load, measure, p99Ratio, ratio, rounds, type Stack, stopAll } from './rounds.js'
import { startHaproxy } from './haproxy.js'
import {
  OPEN_PATH,
  SECURE_PATH,
  startExpressStack,
  startGateway,
  startProfile,
  startRawProxy,
  startReplyFrom,
  startUpstream,
} from './stacks.js'
import { writeTokenFile } from './token-pool.js'

/** Users in scenario (a): a handful of tokens, each reused for the whole run. */
export const FEW_USERS = 10
/** Distinct tokens passed (several times) through a fresh gateway to read its memory, as the issue asks. */
const MEMORY_TOKENS = 100_000
/** Passes of those tokens: RSS after the first shows the cache full, after the later ones whether it grows. */
const MEMORY_PASSES = 3
/** Tokens per key in scenario (c). */
const ROTATION_TOKENS_PER_KEY = 20

const UPSTREAM = 'upstream alone'
const REPLY_FROM = 'reply-from (no auth)'
const RAW_PROXY = 'node:http + undici (no auth)'
const GATEWAY = 'keygate gateway'
const EXPRESS = 'express stack'
const GATEWAY_RELAY_ONLY = 'keygate gateway, token relay only'
const GATEWAY_OPEN = 'keygate gateway, route without auth'
const HAPROXY = 'haproxy jwt_verify'

/** The stacks of (a) and (b), started on the server core (HAProxy when it can run). */
async function proxyStacks(
  ctx: BenchContext,
  scenario: string,
): Promise<{
  replyFrom: ServerProcess
  gateway: ServerProcess
  express: ServerProcess
  haproxy: ServerProcess | undefined
}> {
  const cpu = ctx.machine.serverCpu
  const [replyFrom, gateway, express, haproxy] = await Promise.all([
    startReplyFrom(ctx.upstream.url, cpu),
    startGateway({
      upstreamUrl: ctx.upstream.url,
      jwksUri: ctx.issuer.jwksUri,
      cpu,
      routes: 'few',
      ...(ctx.profileDir ? { cpuProfileDir: join(ctx.profileDir, `gateway-scenario-${scenario}`) } : {}),
    }),
    startExpressStack(ctx.upstream.url, ctx.issuer.jwksUri, cpu),
    ctx.haproxy.ok ? startHaproxy(ctx.upstream.url, ctx.pool.key, cpu) : undefined,
  ])
  return { replyFrom, gateway, express, haproxy }
}

/** HAProxy's entry in a scenario's rounds, when it runs. */
function haproxyStack(haproxy: ServerProcess | undefined, spec: Stack['spec']): Stack[] {
  return haproxy ? [{ name: HAPROXY, server: haproxy, path: SECURE_PATH, spec }] : []
}

/** Why HAProxy is missing from a scenario, when it is. */
function haproxyNote(ctx: BenchContext): string[] {
  return ctx.haproxy.ok ? [] : [`HAProxy skipped: ${ctx.haproxy.why}`]
}

/** (a) A few users, tokens reused: the common case, where the verified-token cache answers. */
export async function scenarioA(ctx: BenchContext): Promise<ScenarioReport> {
  const { replyFrom, gateway, express, haproxy } = await proxyStacks(ctx, 'a')
  const raw = await startRawProxy(ctx.upstream.url, ctx.machine.serverCpu)
  try {
    const tokens = () => ({ tokenFile: ctx.fewUsersFile })
    const runs = await rounds(ctx, [
      { name: UPSTREAM, server: ctx.upstream, path: SECURE_PATH, spec: tokens },
      { name: REPLY_FROM, server: replyFrom, path: SECURE_PATH, spec: tokens },
      { name: RAW_PROXY, server: raw, path: SECURE_PATH, spec: tokens },
      ...haproxyStack(haproxy, tokens),
      { name: GATEWAY, server: gateway, path: SECURE_PATH, spec: tokens },
      { name: GATEWAY_OPEN, server: gateway, path: OPEN_PATH, spec: tokens },
      { name: EXPRESS, server: express, path: SECURE_PATH, spec: tokens },
    ])
    const ratios = runRatios(ctx, runs, { vsProxy: 1.3, vsHaproxy: 0.8, vsExpress: 3 })
    ratios.forEach((list, i) =>
      list.push(
        ...ratio(
          'gateway with auth ÷ the same gateway on a route without auth',
          runOf(runs, GATEWAY, i + 1),
          runOf(runs, GATEWAY_OPEN, i + 1),
        ),
        ...ratio(
          'node:http + undici ÷ reply-from',
          runOf(runs, RAW_PROXY, i + 1),
          runOf(runs, REPLY_FROM, i + 1),
        ),
        ...ratio('gateway ÷ node:http + undici', runOf(runs, GATEWAY, i + 1), runOf(runs, RAW_PROXY, i + 1)),
      ),
    )
    return {
      id: 'a',
      title: `${FEW_USERS} users, tokens reused`,
      runs,
      ratios,
      notes: [
        `"${GATEWAY_OPEN}": the same gateway process, \`${OPEN_PATH}\` (auth none), the same tokens sent and ignored`,
        `"${RAW_PROXY}": the floor of a Node proxy hop (bench/servers/raw-proxy.ts): no framework, auth, header hygiene, logging or metrics`,
        ...haproxyNote(ctx),
      ],
    }
  } finally {
    await stopAll([replyFrom, raw, gateway, express, ...(haproxy ? [haproxy] : [])])
  }
}

function runRatios(
  ctx: BenchContext,
  runs: CaseRun[],
  targets: { vsProxy: number; vsHaproxy: number; vsExpress: number },
): Ratio[][] {
  return Array.from({ length: ctx.runs }, (_, i) => {
    const gw = runOf(runs, GATEWAY, i + 1)
    const rf = runOf(runs, REPLY_FROM, i + 1)
    const ex = runOf(runs, EXPRESS, i + 1)
    const hp = runOf(runs, HAPROXY, i + 1)
    return [
      ...ratio('gateway ÷ reply-from', gw, rf, { op: '>=', value: targets.vsProxy }),
      ...ratio('gateway ÷ haproxy jwt_verify', gw, hp, { op: '>=', value: targets.vsHaproxy }),
      ...ratio('haproxy jwt_verify ÷ reply-from', hp, rf),
      ...ratio('gateway ÷ express', gw, ex, { op: '>=', value: targets.vsExpress }),
      ...p99Ratio('p99 gateway ÷ reply-from', gw, rf, { op: '<=', value: 1.2 }),
    ]
  })
}

/**
 * (b) A token never seen before on every request: the pure verification path. The gateway's loads take
 * disjoint slices of the pool, so no run meets a token an earlier one cached. Then, on a fresh gateway, the
 * whole pool passes twice, with RSS read after each pass: the verified-token cache is bounded and evicts.
 */
export async function scenarioB(ctx: BenchContext, memory: boolean): Promise<ScenarioReport> {
  const { replyFrom, gateway, express, haproxy } = await proxyStacks(ctx, 'b')
  const relayOnly = await startGateway({
    upstreamUrl: ctx.upstream.url,
    jwksUri: ctx.issuer.jwksUri,
    cpu: ctx.machine.serverCpu,
    routes: 'few',
    forward: 'token only',
  })
  const n = ctx.pool.tokens.length
  // Disjoint slices: the warm-up's in proportion to its length, then one per run.
  const warmSpan = Math.floor((n * ctx.warmupS) / (ctx.warmupS + ctx.runs * ctx.durationS))
  const span = Math.floor((n - warmSpan) / ctx.runs)
  const slice = (run: number) =>
    run === 0
      ? { tokenFile: ctx.pool.file, offset: 0, span: Math.max(1, warmSpan) }
      : { tokenFile: ctx.pool.file, offset: warmSpan + (run - 1) * span, span }
  const notes: string[] = []
  let runs: CaseRun[]
  try {
    runs = await rounds(ctx, [
      { name: REPLY_FROM, server: replyFrom, path: SECURE_PATH, spec: slice },
      ...haproxyStack(haproxy, slice),
      { name: GATEWAY, server: gateway, path: SECURE_PATH, spec: slice },
      { name: GATEWAY_RELAY_ONLY, server: relayOnly, path: SECURE_PATH, spec: slice },
      { name: EXPRESS, server: express, path: SECURE_PATH, spec: slice },
    ])
  } finally {
    await stopAll([replyFrom, gateway, relayOnly, express, ...(haproxy ? [haproxy] : [])])
  }
  notes.push(...haproxyNote(ctx))
  for (const r of runs) {
    if (r.stack.startsWith(GATEWAY) && r.load.requests > span) {
      notes.push(
        `run ${r.run}: ${r.stack} took ${r.load.requests} requests from a slice of ${span} tokens, so ` +
          `${r.load.requests - span} of them met a token it had verified before (raise the pool size)`,
      )
    }
  }
  notes.push(
    `token pool: ${n.toLocaleString('en-US')} distinct tokens (${ctx.pool.cached ? 'cached' : 'minted'}), ` +
      `${span.toLocaleString('en-US')} per gateway load`,
    `"${GATEWAY}" forwards what a keygate route forwards by default: an Ed25519 assertion signed for the ` +
      `token (once per token and upstream), not the token; "${GATEWAY_RELAY_ONLY}" relays the token alone ` +
      '(forward.token true, forward.assertion false), as reply-from and the Express stack do: the verification path by itself',
  )
  if (memory) notes.push(...(await memoryCheck(ctx)))
  const ratios = runRatios(ctx, runs, { vsProxy: 0.7, vsHaproxy: 0.45, vsExpress: 2.5 })
  ratios.forEach((list, i) => {
    list.push(
      ...ratio(
        'token relay only ÷ reply-from',
        runOf(runs, GATEWAY_RELAY_ONLY, i + 1),
        runOf(runs, REPLY_FROM, i + 1),
      ),
      ...ratio(
        'token relay only ÷ express',
        runOf(runs, GATEWAY_RELAY_ONLY, i + 1),
        runOf(runs, EXPRESS, i + 1),
        { op: '>=', value: 2.5 },
      ),
    )
  })
  return { id: 'b', title: 'a never-seen token on every request', runs, ratios, notes }
}

/** Three passes of the same 100,000 tokens through a fresh gateway, RSS after each. */
async function memoryCheck(ctx: BenchContext): Promise<string[]> {
  const gateway = await startGateway({
    upstreamUrl: ctx.upstream.url,
    jwksUri: ctx.issuer.jwksUri,
    cpu: ctx.machine.serverCpu,
    routes: 'few',
  })
  try {
    const n = Math.min(MEMORY_TOKENS, ctx.pool.tokens.length)
    const idle = rssBytes(gateway.pid)
    const rss: number[] = []
    const failures: number[] = []
    for (let pass = 1; pass <= MEMORY_PASSES; pass++) {
      const r = await runLoad(
        'autocannon',
        {
          url: `${gateway.url}${SECURE_PATH}`,
          connections: ctx.connections,
          durationS: 0,
          amount: n,
          tokenFile: ctx.pool.file,
          span: n,
        },
        ctx.machine.loadCpu,
      )
      rss.push(rssBytes(gateway.pid))
      failures.push(r.errors + r.non2xx)
      ctx.log(`  memory pass ${pass}: ${r.requests} requests, RSS ${(rss.at(-1)! / 2 ** 20).toFixed(0)} MB`)
    }
    const mb = (b: number) => `${(b / 2 ** 20).toFixed(0)} MB`
    const growth = rss.at(-1)! - rss[0]!
    // Bounded: the later passes hold no more than the first (within 10 %: the heap breathes).
    const bounded = rss.at(-1)! <= rss[0]! * 1.1
    return [
      `target: RSS bounded over ${MEMORY_PASSES} passes of new tokens — ${bounded ? 'met' : 'MISSED'}`,
      `memory: gateway RSS ${mb(idle)} idle, then after each of ${MEMORY_PASSES} passes of the same ` +
        `${n.toLocaleString('en-US')} distinct tokens ${rss.map(mb).join(' → ')} ` +
        `(last pass against the first: ${growth > 0 ? '+' : ''}${mb(growth)}); failed requests ${failures.join(' + ')}. ` +
        'The verified-token cache holds at most TOKEN_CACHE_SIZE (10,000) entries, least recently used out first.',
    ]
  } finally {
    await gateway.stop()
  }
}

/**
 * (c) Keys rotated twice during the run, on the issuer's schedule: the next key is published before it signs,
 * a retired key stays published while its tokens are in use. Each run gets fresh keys and fresh stacks (so
 * the gateway's unknown-kid cooldown of an earlier run cannot matter). The load moves to the new key's
 * tokens at each third of the run; errors must be 0.
 */
export async function scenarioC(ctx: BenchContext): Promise<ScenarioReport> {
  const phaseS = Math.max(1, Math.floor(ctx.durationS / 3))
  const durationS = phaseS * 3
  const runs: CaseRun[] = []
  const notes: string[] = []
  const original = ctx.issuer.keys
  try {
    for (let run = 1; run <= ctx.runs; run++) {
      for (const stack of [GATEWAY, EXPRESS]) {
        const keys = Array.from({ length: 4 }, () => generateBenchKey())
        const [k1, k2, k3, k4] = keys as [BenchKey, BenchKey, BenchKey, BenchKey]
        const nowS = Math.floor(Date.now() / 1000)
        const lines = [k1, k2, k3].flatMap((key, phase) =>
          Array.from(
            { length: ROTATION_TOKENS_PER_KEY },
            (_, i) => `${phase} ${mintBenchToken(key, `user-${i}`, nowS)}`,
          ),
        )
        const file = writeTokenFile('rotation.txt', lines)
        const warmFile = writeTokenFile(
          'rotation-warm.txt',
          lines.filter((l) => l.startsWith('0 ')).map((l) => l.slice(2)),
        )
        ctx.issuer.keys = [k1, k2]
        const jwksBefore = ctx.issuer.jwksRequests
        const server =
          stack === GATEWAY
            ? await startGateway({
                upstreamUrl: ctx.upstream.url,
                jwksUri: ctx.issuer.jwksUri,
                cpu: ctx.machine.serverCpu,
                routes: 'few',
              })
            : await startExpressStack(ctx.upstream.url, ctx.issuer.jwksUri, ctx.machine.serverCpu)
        try {
          if (ctx.warmupS > 0) {
            await load(ctx, server, SECURE_PATH, { tokenFile: warmFile, durationS: ctx.warmupS })
          }
          // Rotation 1 (a third in): K2 signs, K1 retired but published, K3 published as next.
          const first = setTimeout(() => (ctx.issuer.keys = [k1, k2, k3]), phaseS * 1000)
          // Rotation 2 (two thirds in): K3 signs, K2 retired, K4 next; K1's tokens are no longer in use.
          const second = setTimeout(() => (ctx.issuer.keys = [k2, k3, k4]), phaseS * 2000)
          try {
            runs.push(
              await measure(ctx, server, stack, run, SECURE_PATH, { tokenFile: file, phaseS, durationS }),
            )
          } finally {
            clearTimeout(first)
            clearTimeout(second)
          }
        } finally {
          await server.stop()
        }
        notes.push(`run ${run}, ${stack}: ${ctx.issuer.jwksRequests - jwksBefore} JWKS fetches`)
      }
    }
  } finally {
    ctx.issuer.keys = original
  }
  const failed = runs.reduce((sum, r) => sum + r.load.errors + r.load.non2xx, 0)
  notes.unshift(
    `target: 0 failed requests across rotations — ${failed === 0 ? 'met' : `MISSED (${failed} failed)`}`,
  )
  return {
    id: 'c',
    title: `keys rotated twice during a ${durationS} s run`,
    runs,
    ratios: Array.from({ length: ctx.runs }, (_, i) =>
      ratio('gateway ÷ express', runOf(runs, GATEWAY, i + 1), runOf(runs, EXPRESS, i + 1)),
    ),
    notes,
  }
}

/** The profile service's `GET /me` through the gateway (the route keygate's default table has). */
const PROFILE_ME_PATH = '/api/profile/me'
const GATEWAY_PROFILE = 'gateway → profile GET /me'

/**
 * (f) The whole request to a service: gateway → profile `GET /me`, gateway and profile both on the server
 * core (the profile verifies the gateway's assertion, checks revocation and reads its SQLite store), against
 * the same gateway proxying to the bench upstream (on the load core, as in (a)). CPU µs/req of the profile
 * case counts both processes.
 */
export async function scenarioProfile(ctx: BenchContext): Promise<ScenarioReport> {
  const cpu = ctx.machine.serverCpu
  const gatewayPort = await freePort()
  const profile = await startProfile(
    ctx.issuer.jwksUri,
    gatewayPort,
    cpu,
    ctx.profileDir ? join(ctx.profileDir, 'profile-scenario-f') : undefined,
  )
  let gateway: ServerProcess | undefined
  try {
    gateway = await startGateway({
      upstreamUrl: ctx.upstream.url,
      jwksUri: ctx.issuer.jwksUri,
      cpu,
      routes: 'few',
      profile: { url: profile.url, gatewayPort },
      ...(ctx.profileDir ? { cpuProfileDir: join(ctx.profileDir, 'gateway-scenario-f') } : {}),
    })
    const tokens = () => ({ tokenFile: ctx.fewUsersFile })
    const runs = await rounds(ctx, [
      { name: GATEWAY, server: gateway, path: SECURE_PATH, spec: tokens },
      { name: GATEWAY_PROFILE, server: gateway, path: PROFILE_ME_PATH, spec: tokens, alsoCounted: [profile] },
    ])
    return {
      id: 'f',
      title: 'gateway → profile GET /me, both on one core (tokens reused)',
      runs,
      ratios: Array.from({ length: ctx.runs }, (_, i) => {
        const alone = runOf(runs, GATEWAY, i + 1)
        const withProfile = runOf(runs, GATEWAY_PROFILE, i + 1)
        return [
          ...ratio('gateway → profile ÷ gateway on the bench upstream', withProfile, alone, {
            op: '>=',
            value: 0.45,
          }),
          // One core's worth of requests, from CPU time: what req/s would be on a core of its own.
          ...(alone?.cpuUsPerRequest && withProfile?.cpuUsPerRequest
            ? [
                {
                  name: 'the same by CPU per request (gateway ÷ gateway + profile)',
                  value: alone.cpuUsPerRequest / withProfile.cpuUsPerRequest,
                  target: { op: '>=' as const, value: 0.45 },
                },
              ]
            : []),
        ]
      }),
      notes: [`"${GATEWAY_PROFILE}": CPU µs/req and RSS are the gateway's and the profile's together`],
    }
  } finally {
    await stopAll([profile, ...(gateway ? [gateway] : [])])
  }
}

/** (d) The same route among 1,000 others: what routing costs as the table grows. */
export async function scenarioD(ctx: BenchContext): Promise<ScenarioReport> {
  const cpu = ctx.machine.serverCpu
  const few = 'gateway, 2 routes'
  const many = 'gateway, 1,000 routes'
  const [small, large] = await Promise.all([
    startGateway({ upstreamUrl: ctx.upstream.url, jwksUri: ctx.issuer.jwksUri, cpu, routes: 'few' }),
    startGateway({ upstreamUrl: ctx.upstream.url, jwksUri: ctx.issuer.jwksUri, cpu, routes: 'many' }),
  ])
  try {
    const tokens = () => ({ tokenFile: ctx.fewUsersFile })
    const runs = await rounds(ctx, [
      { name: few, server: small, path: SECURE_PATH, spec: tokens },
      { name: many, server: large, path: SECURE_PATH, spec: tokens },
    ])
    return {
      id: 'd',
      title: '1,000 routes in the table (tokens reused)',
      runs,
      ratios: Array.from({ length: ctx.runs }, (_, i) =>
        ratio('1,000 routes ÷ 2 routes', runOf(runs, many, i + 1), runOf(runs, few, i + 1)),
      ),
      notes: [],
    }
  } finally {
    await stopAll([small, large])
  }
}

/**
 * The gateway as 1 and as 2 processes on one port (`--workers`), scenario (a)'s load. Nothing is pinned
 * here: two workers need both cores, which they share with the upstream and the load generator.
 */
export async function scenarioWorkers(ctx: BenchContext): Promise<ScenarioReport> {
  const unpinned = { ...ctx, machine: { ...ctx.machine, loadCpu: undefined, serverCpu: undefined } }
  const upstream = await startUpstream(undefined)
  const [one, two] = await Promise.all(
    [1, 2].map((workers) =>
      startGateway({
        upstreamUrl: upstream.url,
        jwksUri: ctx.issuer.jwksUri,
        cpu: undefined,
        routes: 'few',
        workers,
      }),
    ),
  )
  try {
    const tokens = () => ({ tokenFile: ctx.fewUsersFile })
    const runs = await rounds(unpinned, [
      { name: 'gateway, 1 process', server: one!, path: SECURE_PATH, spec: tokens },
      { name: 'gateway, 2 processes', server: two!, path: SECURE_PATH, spec: tokens },
    ])
    return {
      id: 'workers',
      title: 'the gateway as 1 and 2 processes (--workers), nothing pinned',
      runs,
      ratios: Array.from({ length: ctx.runs }, (_, i) =>
        ratio(
          '2 processes ÷ 1',
          runOf(runs, 'gateway, 2 processes', i + 1),
          runOf(runs, 'gateway, 1 process', i + 1),
        ),
      ),
      notes: [],
    }
  } finally {
    await stopAll([one!, two!, upstream])
  }
}

/** FEW_USERS tokens signed with `key`, written for the load generator. */
export function fewUsersTokens(key: BenchKey): string {
  const nowS = Math.floor(Date.now() / 1000)
  return writeTokenFile(
    'few-users.txt',
    Array.from({ length: FEW_USERS }, (_, i) => mintBenchToken(key, `frequent-user-${i}`, nowS)),
  )
}
