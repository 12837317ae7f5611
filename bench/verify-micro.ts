/**
 * Micro-benchmark of keygate's verify path beside the raw signature check it is built on, on the same
 * tokens and key: `TokenVerifier.verify` on never-seen tokens (strict parsing, claim checks, key lookup,
 * node:crypto.verify, caching) and on a cached one, against `node:crypto.verify` alone; and what a new token
 * costs the gateway in all — its verification and the assertion signed for it — against the two raw
 * signature operations (an RS256 verify and an Ed25519 sign of an assertion-sized input). Runs in its own
 * process, pinned to the server core, one verification at a time (as a request does), the measures taking
 * turns in short rounds and counted per CPU-second, so that other work on a shared machine skews none.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { generateKeyPairSync, sign, verify } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Registry } from 'prom-client'
import { parseCompactJws } from '../lib/auth/compact.js'
import { importVerificationKey } from '../lib/auth/jwk.js'
import { AuthMetrics } from '../lib/auth/metrics.js'
import type { KeySource, VerificationKey } from '../lib/auth/types.js'
import { DEFAULT_CLOCK_TOLERANCE_S, TokenVerifier } from '../lib/auth/verifier.js'
import { AssertionSigner } from '../gateway/assertion-signer.js'
import { BENCH_AUDIENCE, BENCH_ISSUER } from './bench-issuer.js'
import { pinned } from './machine.js'
import type { ScenarioReport } from './report.js'
import { type TokenPool, tokenPool } from './token-pool.js'

/** Time spent on each measure, in milliseconds (full and quick). */
const MEASURE_MS = 2_000
const QUICK_MEASURE_MS = 500

interface MicroResult {
  rawVerifyOps: number
  freshOps: number
  cachedOps: number
  parseOps: number
  rawSignOps: number
  newTokenOps: number
  freshTokens: number
}

/** The size of what the gateway signs for an assertion (its header and claims, base64url), in bytes. */
const ASSERTION_INPUT_BYTES = 620

/** Rounds each measure is split into: the measures take turns, so drift on a shared core hits them alike. */
const ROUNDS = 10

/** A running measure: operations done and CPU time spent on them. */
interface Tally {
  ops: number
  cpuUs: number
}

/**
 * Calls `fn` with 0, 1, 2… for `ms` of wall time, adding the operations and this process's CPU time (user +
 * system, GC threads included) to `tally`: CPU time, unlike wall time, is not stolen by other processes.
 */
async function runFor(ms: number, tally: Tally, fn: (i: number) => unknown): Promise<void> {
  const cpu = process.cpuUsage()
  const start = performance.now()
  while (performance.now() - start < ms) {
    for (let k = 0; k < 50; k++) await fn(tally.ops++)
  }
  const { user, system } = process.cpuUsage(cpu)
  tally.cpuUs += user + system
}

const perCpuSecond = (t: Tally) => (t.ops / t.cpuUs) * 1e6

async function measure(pool: TokenPool, ms: number): Promise<MicroResult> {
  const key = importVerificationKey(pool.key.publicJwk, ['RS256']) as VerificationKey
  const source: KeySource = {
    getKey: (kid) => (kid === key.kid ? key : undefined),
    ready: async () => {},
    usable: () => true,
    onKeysRemoved: () => {},
    close: async () => {},
  }
  const verifier = new TokenVerifier({
    issuers: [
      {
        issuer: BENCH_ISSUER,
        audiences: [BENCH_AUDIENCE],
        algorithms: ['RS256'],
        types: ['at+jwt'],
        clockToleranceS: DEFAULT_CLOCK_TOLERANCE_S,
        keySource: source,
      },
    ],
    profile: 'access_token',
    metrics: new AuthMetrics(new Registry()),
  })
  const tokens = pool.tokens
  const parts = tokens.slice(0, 1000).map((t) => {
    const dot = t.lastIndexOf('.')
    return { data: Buffer.from(t.slice(0, dot)), signature: Buffer.from(t.slice(dot + 1), 'base64url') }
  })
  const raw: Tally = { ops: 0, cpuUs: 0 }
  const fresh: Tally = { ops: 0, cpuUs: 0 }
  const cached: Tally = { ops: 0, cpuUs: 0 }
  const parse: Tally = { ops: 0, cpuUs: 0 }
  const rawSign: Tally = { ops: 0, cpuUs: 0 }
  const newToken: Tally = { ops: 0, cpuUs: 0 }
  const signer = await AssertionSigner.open({
    keyFile: join(mkdtempSync(join(tmpdir(), 'kg-bench-micro-')), 'assertion-key.json'),
    issuer: 'http://gateway.bench',
  })
  const ed25519 = generateKeyPairSync('ed25519').privateKey
  const assertionInput = Buffer.alloc(ASSERTION_INPUT_BYTES, 'a')
  const rawVerify = (i: number) => {
    const p = parts[i % parts.length]!
    if (!verify('sha256', p.data, key.key, p.signature)) throw new Error('bench: raw verify failed')
  }
  // Fresh: every call a token this verifier has never seen (the pool is larger than its cache): from the
  // start of the pool up for the verify path alone, from its end down for the whole new-token path.
  const freshVerify = (i: number) => verifier.verify(tokens[(i + 1000) % tokens.length]!)
  const newTokenPath = async (i: number) =>
    signer.assertionFor(
      await verifier.verify(tokens[tokens.length - 501 - (i % (tokens.length - 501))]!),
      'bench',
    )
  // Warm-up (JIT), on tokens the fresh measure will not use.
  for (let i = 0; i < 500; i++) {
    rawVerify(i)
    await verifier.verify(tokens[tokens.length - 1 - i]!)
  }
  const slice = ms / ROUNDS
  for (let round = 0; round < ROUNDS; round++) {
    await runFor(slice, raw, rawVerify)
    await runFor(slice, fresh, freshVerify)
    await runFor(slice, cached, () => verifier.verify(tokens[0]!))
    await runFor(slice, parse, (i) => parseCompactJws(tokens[i % tokens.length]!))
    await runFor(slice, rawSign, () => sign(null, assertionInput, ed25519))
    await runFor(slice, newToken, newTokenPath)
  }
  return {
    rawVerifyOps: perCpuSecond(raw),
    freshOps: perCpuSecond(fresh),
    cachedOps: perCpuSecond(cached),
    parseOps: perCpuSecond(parse),
    rawSignOps: perCpuSecond(rawSign),
    newTokenOps: perCpuSecond(newToken),
    freshTokens: fresh.ops + newToken.ops,
  }
}

/** Runs the micro-benchmark in a child process pinned to `cpu`; its figures as a report. */
export async function verifyMicroBenchmark(
  pool: TokenPool,
  cpu: number | undefined,
  quick: boolean,
): Promise<ScenarioReport> {
  const [command, ...args] = pinned(cpu, [
    process.execPath,
    '--conditions=keygate-source',
    '--import',
    'tsx',
    join(import.meta.dirname, 'verify-micro.ts'),
    String(pool.tokens.length),
    String(quick ? QUICK_MEASURE_MS : MEASURE_MS),
  ])
  const child = spawn(command!, args, { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout!.on('data', (d: Buffer) => (out += d))
  const [code] = (await once(child, 'exit')) as [number | null]
  if (code !== 0) throw new Error(`bench: the verify micro-benchmark failed (exit code ${code})`)
  const r = JSON.parse(out.trim().split('\n').at(-1)!) as MicroResult
  const us = (ops: number) => (1e6 / ops).toFixed(1)
  const row = (what: string, ops: number) =>
    `| ${what} | ${Math.round(ops).toLocaleString('en-US')} | ${us(ops)} |`
  const cost = r.rawVerifyOps / r.freshOps
  const rawPair = 1e6 / r.rawVerifyOps + 1e6 / r.rawSignOps
  const notes = [
    `keygate's verify path on a never-seen token costs ${cost.toFixed(2)}× a raw node:crypto.verify ` +
      `(target ≤ 1.3: ${cost <= 1.3 ? 'met' : 'MISSED'}); ${r.freshTokens.toLocaleString('en-US')} distinct tokens verified.`,
    `a new token's verification and assertion cost ${us(r.newTokenOps)} µs, ` +
      `${(1e6 / r.newTokenOps / rawPair).toFixed(2)}× the ${rawPair.toFixed(1)} µs of a raw RS256 verify and a raw ` +
      'Ed25519 sign: what scenario (b) adds to a reused token at the least.',
  ]
  if (r.freshTokens > pool.tokens.length - 1500)
    notes.push('the pool was too small: some "fresh" tokens were cached')
  return {
    id: 'micro',
    title: 'verify path micro-benchmark (one core, one at a time)',
    runs: [],
    ratios: [],
    notes,
    extra: [
      '| operation | ops per CPU-second | CPU µs/op |',
      '|---|---:|---:|',
      row('node:crypto.verify (RS256, same tokens and key)', r.rawVerifyOps),
      row('TokenVerifier.verify, never-seen token', r.freshOps),
      row('TokenVerifier.verify, cached token', r.cachedOps),
      row('parseCompactJws alone', r.parseOps),
      row(`node:crypto.sign (Ed25519, ${ASSERTION_INPUT_BYTES} bytes, as an assertion)`, r.rawSignOps),
      row('verify + assertion for the gateway, never-seen token', r.newTokenOps),
    ].join('\n'),
  }
}

if (process.argv[1] === import.meta.filename) {
  const pool = await tokenPool(Number(process.argv[2]))
  console.log(JSON.stringify(await measure(pool, Number(process.argv[3]))))
}
