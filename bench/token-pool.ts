/**
 * Pools of distinct, never-seen access tokens for scenario (b). Minting costs about 1 ms of CPU per token
 * (an RSA-2048 signature), so a pool is minted by one child process per core and cached under bench/.cache
 * (git-ignored) with the key that signed it; later runs reuse it while its tokens have at least
 * POOL_MIN_REMAINING_S left to live.
 */
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import {
  BENCH_TOKEN_TTL_S,
  type BenchKey,
  generateBenchKey,
  loadBenchKey,
  mintBenchToken,
  type StoredKey,
  storeBenchKey,
} from './bench-issuer.js'

/** Where pools are cached (git-ignored). */
export const CACHE_DIR = join(import.meta.dirname, '.cache')
/** A cached pool is reminted once its tokens have less than this left to live, in seconds (1 day). */
const POOL_MIN_REMAINING_S = 24 * 3600

interface PoolMeta {
  key: StoredKey
  count: number
  /** Issue time of the pool's tokens, in seconds since the epoch. */
  mintedAtS: number
}

export interface TokenPool {
  key: BenchKey
  tokens: string[]
  /** One token a line: what wrk's Lua script reads. */
  file: string
  /** True when the pool came from the cache. */
  cached: boolean
}

/**
 * A pool of `count` distinct tokens signed by one key, from the cache or freshly minted.
 * @example
 * const pool = await tokenPool(100_000)
 */
export async function tokenPool(count: number, dir = CACHE_DIR): Promise<TokenPool> {
  const metaFile = join(dir, `pool-${count}.json`)
  const file = join(dir, `pool-${count}.txt`)
  const nowS = Math.floor(Date.now() / 1000)
  if (existsSync(metaFile) && existsSync(file)) {
    const meta = JSON.parse(readFileSync(metaFile, 'utf8')) as PoolMeta
    const tokens = readFileSync(file, 'utf8').split('\n').filter(Boolean)
    if (tokens.length === count && meta.mintedAtS + BENCH_TOKEN_TTL_S - nowS > POOL_MIN_REMAINING_S) {
      return { key: loadBenchKey(meta.key), tokens, file, cached: true }
    }
  }
  mkdirSync(dir, { recursive: true })
  const key = generateBenchKey()
  const stored = storeBenchKey(key)
  const workers = Math.max(1, Math.min(availableParallelism(), Math.ceil(count / 1000)))
  const per = Math.ceil(count / workers)
  const parts = await Promise.all(
    Array.from({ length: workers }, async (_, i) => {
      const part = join(dir, `pool-${count}.part${i}`)
      const from = i * per
      const n = Math.max(0, Math.min(per, count - from))
      const child = fork(import.meta.filename, ['mint', part, String(from), String(n), String(nowS)], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      })
      child.send(stored)
      const [code] = (await once(child, 'exit')) as [number | null]
      if (code !== 0) throw new Error(`bench: minting tokens failed (child exit code ${code})`)
      const text = readFileSync(part, 'utf8')
      rmSync(part)
      return text
    }),
  )
  const tokens = parts.join('').split('\n').filter(Boolean)
  writeFileSync(file, `${tokens.join('\n')}\n`)
  writeFileSync(metaFile, JSON.stringify({ key: stored, count, mintedAtS: nowS } satisfies PoolMeta))
  return { key, tokens, file, cached: false }
}

/** Writes `tokens` one a line to `name` in the cache directory (small pools for wrk). */
export function writeTokenFile(name: string, tokens: readonly string[], dir = CACHE_DIR): string {
  mkdirSync(dir, { recursive: true })
  const file = join(dir, name)
  writeFileSync(file, `${tokens.join('\n')}\n`)
  return file
}

/** Child: mints `n` tokens for subjects `user-<from>`… and writes them to `part`. */
async function mintPart(part: string, from: number, n: number, nowS: number): Promise<void> {
  const [stored] = (await once(process, 'message')) as [StoredKey]
  const key = loadBenchKey(stored)
  const lines: string[] = []
  for (let i = 0; i < n; i++) lines.push(mintBenchToken(key, `user-${from + i}`, nowS))
  writeFileSync(part, lines.length ? `${lines.join('\n')}\n` : '')
  process.disconnect?.()
}

if (process.argv[1] === import.meta.filename && process.argv[2] === 'mint') {
  const [part, from, n, nowS] = process.argv.slice(3)
  await mintPart(part!, Number(from), Number(n), Number(nowS))
}
