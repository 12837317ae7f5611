/**
 * HAProxy with its built-in `jwt_verify` (issue 18's peer): one thread, RS256 checked on every request with
 * no cache, plus the claims an operator would check beside it (alg, iss, aud, exp), in front of the bench
 * upstream with keep-alive reuse. Debian's haproxy (2.5 and later have `jwt_verify`) is installed with
 * apt-get when missing and the bench runs as root; otherwise the stack is skipped with a message.
 * Debian's 2.6 reads the key for `jwt_verify` as a public key PEM (SPKI), not a certificate, whatever its
 * manual says: given a certificate it answers -5 (unknown certificate) for every token.
 */
import { spawn, spawnSync } from 'node:child_process'
import { createPublicKey } from 'node:crypto'
import { once } from 'node:events'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BENCH_AUDIENCE, BENCH_ISSUER, type BenchKey } from './bench-issuer.js'
import { aptInstall, onPath, pinned } from './machine.js'
import { freePort, type ServerProcess } from './processes.js'

/** How long HAProxy gets to accept connections, in milliseconds. */
const START_TIMEOUT_MS = 10_000
/** How long HAProxy gets to exit after SIGTERM before SIGKILL, in milliseconds. */
const STOP_TIMEOUT_MS = 5_000

/** Whether haproxy (built with OpenSSL, so with `jwt_verify`) can be used; why not otherwise. */
export function haproxyAvailable(log: (line: string) => void): { ok: true } | { ok: false; why: string } {
  if (!onPath('haproxy') && !aptInstall('haproxy', log))
    return { ok: false, why: 'haproxy is not installed (and could not be installed)' }
  const version = spawnSync('haproxy', ['-vv'], { encoding: 'utf8' }).stdout ?? ''
  if (!/USE_OPENSSL=1/.test(version)) return { ok: false, why: 'this haproxy is built without OpenSSL' }
  const m = /HAProxy version (\d+)\.(\d+)/.exec(version)
  if (!m || Number(m[1]) * 100 + Number(m[2]) < 205) {
    return {
      ok: false,
      why: `haproxy ${m ? `${m[1]}.${m[2]}` : '?'} has no jwt_verify (2.5 or later needed)`,
    }
  }
  return { ok: true }
}

async function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

/** The configuration: deny unless the bearer token's alg, iss, aud, exp and RS256 signature check out. */
export function haproxyConfig(port: number, upstreamUrl: string, publicKeyFile: string): string {
  const upstream = new URL(upstreamUrl)
  return `global
  nbthread 1
  maxconn 4096

defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  timeout http-keep-alive 30s

frontend bench
  bind 127.0.0.1:${port}
  http-request set-var(txn.bearer) http_auth_bearer
  http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('$.alg')
  http-request deny status 401 unless { var(txn.alg) -m str RS256 }
  http-request deny status 401 unless { var(txn.bearer),jwt_verify(txn.alg,"${publicKeyFile}") -m int 1 }
  http-request deny status 401 unless { var(txn.bearer),jwt_payload_query('$.iss') -m str ${BENCH_ISSUER} }
  http-request deny status 401 unless { var(txn.bearer),jwt_payload_query('$.aud') -m str ${BENCH_AUDIENCE} }
  http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('$.exp','int')
  http-request set-var(txn.now) date()
  http-request deny status 401 unless { var(txn.exp),sub(txn.now) -m int gt 0 }
  default_backend upstream

backend upstream
  http-reuse always
  server upstream ${upstream.hostname}:${upstream.port}
`
}

/** Starts HAProxy (pinned to `cpu`) trusting `key`'s tokens in front of `upstreamUrl`. */
export async function startHaproxy(
  upstreamUrl: string,
  key: BenchKey,
  cpu: number | undefined,
): Promise<ServerProcess> {
  const work = mkdtempSync(join(tmpdir(), 'kg-bench-haproxy-'))
  const publicKeyFile = join(work, 'public-key.pem')
  writeFileSync(publicKeyFile, createPublicKey(key.privateKey).export({ type: 'spki', format: 'pem' }))
  const port = await freePort()
  const configFile = join(work, 'haproxy.cfg')
  writeFileSync(configFile, haproxyConfig(port, upstreamUrl, publicKeyFile))
  const [command, ...args] = pinned(cpu, ['haproxy', '-db', '-f', configFile])
  const child = spawn(command!, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)))
  const exited = once(child, 'exit')
  const deadline = Date.now() + START_TIMEOUT_MS
  while (!(await accepts(port))) {
    if (child.exitCode !== null) throw new Error(`bench: haproxy exited before listening:\n${stderr}`)
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`bench: haproxy did not listen in time:\n${stderr}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return {
    name: 'haproxy',
    url: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const killer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS)
      await exited.catch(() => {})
      clearTimeout(killer)
    },
  }
}
