/**
 * The slow-client attack of issue 13 against a running system, measured from the side of everyone else:
 * `sockets` connections from one address (127.0.0.2) send a request head with `Content-Length: 1000`, then
 * one byte of body per second — half of them `POST /auth/login`, half an authenticated `PUT /api/files/…` —
 * and reconnect whenever the gateway closes one, for the whole run. Meanwhile legitimate users on 127.0.0.1
 * log in and call the API (`GET /api/profile/me`, a small upload) in a loop; their latencies (p50, p99) and
 * success counts are what the run reports, beside what the attack sockets were answered.
 *
 *   npx tsx --conditions=keygate-source bench/slow-clients.ts                       start a system (every component its own process)
 *   npx tsx --conditions=keygate-source bench/slow-clients.ts --gateway http://127.0.0.1:8080   attack a running one (`npm start`)
 *   options: --sockets 200 --duration 30 --users 4
 */
import { randomUUID } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import { parseArgs } from 'node:util'
import { Agent, request } from 'undici'
import { quantile } from './quantiles.js'

/** Where the attack comes from; the legitimate users use 127.0.0.1. */
export const ATTACK_ADDRESS = '127.0.0.2'
/** The body length every slow request declares, in bytes. */
const DECLARED_LENGTH = 1000
/** One byte of body per this many milliseconds. */
const TRICKLE_MS = 1000
/** A legitimate request not answered within this many milliseconds fails. */
const LEGITIMATE_TIMEOUT_MS = 20_000

export interface SlowClientAttackOptions {
  /** The gateway, `http://127.0.0.1:port`. */
  gatewayUrl: string
  /** Slow connections kept open at once. */
  sockets: number
  durationMs: number
  /** Legitimate users, each looping login → profile read → small upload. */
  users: number
  /** Called with progress lines. */
  log?: (line: string) => void
}

/** Latencies of one kind of legitimate request, in milliseconds, and how many succeeded or failed. */
export interface LatencySummary {
  ok: number
  failed: number
  /** Unexpected answers, `status code` → count. */
  failures: Record<string, number>
  p50Ms: number
  p99Ms: number
  maxMs: number
}

export interface SlowClientAttackReport {
  login: LatencySummary
  api: LatencySummary
  /** Connections the attacker opened over the run. */
  attackConnections: number
  /** What the attack's requests were answered: `status code` (or `closed`) → count. */
  attackAnswers: Record<string, number>
  /** Attack requests that reached an answer saying the request got through (2xx): must be 0. */
  attackSucceeded: number
}

/**
 * Runs the attack and the legitimate load together for `durationMs` and reports.
 * @example
 * const report = await runSlowClientAttack({ gatewayUrl, sockets: 200, durationMs: 30_000, users: 4 })
 */
export async function runSlowClientAttack(options: SlowClientAttackOptions): Promise<SlowClientAttackReport> {
  const log = options.log ?? (() => {})
  // A stuck request counts as a failure (status 0) instead of stalling its user for the rest of the run.
  const agent = new Agent({
    connections: options.users * 2,
    localAddress: '127.0.0.1',
    headersTimeout: LEGITIMATE_TIMEOUT_MS,
    bodyTimeout: LEGITIMATE_TIMEOUT_MS,
  })
  try {
    const call = async (method: string, path: string, body?: unknown, token?: string, raw?: string) => {
      const started = performance.now()
      try {
        const res = await request(`${options.gatewayUrl}${path}`, {
          method: method as 'GET',
          dispatcher: agent,
          headers: {
            ...(token ? { authorization: `Bearer ${token}` } : {}),
            ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
            ...(raw !== undefined ? { 'content-type': 'text/plain' } : {}),
          },
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
          ...(raw !== undefined ? { body: raw } : {}),
        })
        const text = await res.body.text()
        let json: Record<string, unknown> = {}
        try {
          json = JSON.parse(text) as Record<string, unknown>
        } catch {
          // not JSON
        }
        return { status: res.statusCode, json, ms: performance.now() - started }
      } catch {
        return { status: 0, json: {} as Record<string, unknown>, ms: performance.now() - started }
      }
    }
    const account = async () => {
      const name = randomUUID()
      const credentials = { email: `${name}@example.com`, password: `passphrase of ${name}` }
      const registered = await call('POST', '/auth/register', credentials)
      if (registered.status >= 300) throw new Error(`bench: register answered ${registered.status}`)
      const login = await call('POST', '/auth/login', credentials)
      if (login.status !== 200) throw new Error(`bench: login answered ${login.status}`)
      return { credentials, token: login.json.access_token as string }
    }

    const users = await Promise.all(Array.from({ length: options.users }, account))
    const attacker = await account()
    log(`bench: ${users.length} users and the attacker registered; attack starts`)

    const deadline = Date.now() + options.durationMs
    const attack = new SlowAttack(options.gatewayUrl, attacker.token, deadline)
    attack.start(options.sockets)

    const logins: Sample[] = []
    const api: Sample[] = []
    await Promise.all(
      users.map(async (user, u) => {
        for (let n = 0; Date.now() < deadline; n++) {
          const login = await call('POST', '/auth/login', user.credentials)
          logins.push([login.ms, login.status === 200, `${login.status} ${String(login.json.code ?? '')}`])
          if (login.status === 200) user.token = login.json.access_token as string
          const me = await call('GET', '/api/profile/me', undefined, user.token)
          api.push([me.ms, me.status === 200, `${me.status} ${String(me.json.code ?? '')}`])
          const put = await call('PUT', `/api/files/bench-${u}-${n % 4}.txt`, undefined, user.token, `n=${n}`)
          api.push([
            put.ms,
            put.status === 200 || put.status === 201,
            `${put.status} ${String(put.json.code ?? '')}`,
          ])
        }
      }),
    )
    await attack.stop()
    return {
      login: summarise(logins),
      api: summarise(api),
      attackConnections: attack.connections,
      attackAnswers: attack.answers,
      attackSucceeded: attack.succeeded,
    }
  } finally {
    await agent.close()
  }
}

type Sample = [ms: number, ok: boolean, answer: string]

function summarise(samples: Sample[]): LatencySummary {
  const times = samples.map(([ms]) => ms)
  const at = (q: number) => (times.length === 0 ? 0 : quantile(times, q))
  const failures: Record<string, number> = {}
  for (const [, ok, answer] of samples) if (!ok) failures[answer] = (failures[answer] ?? 0) + 1
  const failed = samples.filter(([, ok]) => !ok).length
  return {
    ok: samples.length - failed,
    failed,
    failures,
    p50Ms: Math.round(at(0.5)),
    p99Ms: Math.round(at(0.99)),
    maxMs: Math.round(at(1)),
  }
}

/** The attack's sockets: each sends a head, then a byte a second; a closed one is replaced until the deadline. */
class SlowAttack {
  readonly #host: string
  readonly #port: number
  readonly #token: string
  readonly #deadline: number
  readonly #open = new Set<Socket>()
  connections = 0
  succeeded = 0
  readonly answers: Record<string, number> = {}

  constructor(gatewayUrl: string, token: string, deadline: number) {
    const url = new URL(gatewayUrl)
    this.#host = url.hostname
    this.#port = Number(url.port)
    this.#token = token
    this.#deadline = deadline
  }

  start(sockets: number): void {
    for (let i = 0; i < sockets; i++) this.#open1(i)
  }

  async stop(): Promise<void> {
    const closing = [...this.#open].map(
      (s) => new Promise<void>((resolve) => s.once('close', () => resolve())),
    )
    for (const socket of this.#open) socket.destroy()
    await Promise.all(closing)
  }

  #open1(i: number): void {
    this.connections++
    const socket = connect({ host: this.#host, port: this.#port, localAddress: ATTACK_ADDRESS })
    this.#open.add(socket)
    const login = i % 2 === 0
    const head = login
      ? `POST /auth/login HTTP/1.1\r\nhost: ${this.#host}\r\ncontent-type: application/json\r\n`
      : `PUT /api/files/slow-${i}.bin HTTP/1.1\r\nhost: ${this.#host}\r\nauthorization: Bearer ${this.#token}\r\ncontent-type: application/octet-stream\r\n`
    socket.write(`${head}content-length: ${DECLARED_LENGTH}\r\n\r\n{`)
    let sent = 1
    let answer = ''
    const trickle = setInterval(() => {
      if (sent < DECLARED_LENGTH - 1 && socket.writable) {
        socket.write(' ')
        sent++
      }
    }, TRICKLE_MS)
    socket.on('data', (chunk: Buffer) => {
      if (answer === '') answer = chunk.toString('latin1')
    })
    socket.on('error', () => {})
    socket.on('close', () => {
      clearInterval(trickle)
      this.#open.delete(socket)
      const status = /^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1]
      const code = /"code":"([A-Z_]+)"/.exec(answer)?.[1] ?? ''
      const key = status === undefined ? 'closed' : `${status} ${code}`.trim()
      this.answers[key] = (this.answers[key] ?? 0) + 1
      if (status !== undefined && status.startsWith('2')) this.succeeded++
      if (Date.now() < this.#deadline) this.#open1(i)
    })
  }
}

/** Markdown lines of a report. */
export function slowClientMarkdown(report: SlowClientAttackReport, command: string): string {
  const row = (name: string, s: LatencySummary) =>
    `| ${name} | ${s.ok} | ${s.failed} | ${s.p50Ms} | ${s.p99Ms} | ${s.maxMs} |`
  return [
    `- command: \`${command}\``,
    '',
    '| legitimate requests (127.0.0.1) | succeeded | failed | p50 ms | p99 ms | max ms |',
    '| --- | --: | --: | --: | --: | --: |',
    row('login `POST /auth/login`', report.login),
    row('API `GET /api/profile/me`, `PUT /api/files/…`', report.api),
    '',
    `Attack (127.0.0.2): ${report.attackConnections} connections; answers: ${Object.entries(
      report.attackAnswers,
    )
      .map(([k, v]) => `${k} × ${v}`)
      .join(', ')}; requests that got through: ${report.attackSucceeded}.`,
  ].join('\n')
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      gateway: { type: 'string' },
      sockets: { type: 'string', default: '200' },
      duration: { type: 'string', default: '30' },
      users: { type: 'string', default: '4' },
    },
  })
  const log = (line: string) => process.stderr.write(`${line}\n`)
  let gatewayUrl = values.gateway
  let stop = async () => {}
  if (gatewayUrl === undefined) {
    // The same start-up as the end-to-end tests: every component its own process, free ports, fresh data.
    const { startProcesses } = await import('../test/helpers/processes.js')
    log('bench: starting the system')
    const system = await startProcesses({
      components: ['issuer', 'gateway', 'profile', 'files'],
      env: { GATEWAY_RATE_LIMIT: '1000000/1m' },
    })
    gatewayUrl = system.urls.gateway
    stop = () => system.stop()
  }
  try {
    const report = await runSlowClientAttack({
      gatewayUrl,
      sockets: Number(values.sockets),
      durationMs: Number(values.duration) * 1000,
      users: Number(values.users),
      log,
    })
    const args = process.argv.slice(2).join(' ')
    console.log(
      slowClientMarkdown(
        report,
        `npx tsx --conditions=keygate-source bench/slow-clients.ts${args ? ` ${args}` : ''}`,
      ),
    )
  } finally {
    await stop()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    console.error(err)
    process.exitCode = 1
  })
}
