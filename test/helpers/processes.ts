/**
 * The whole system (or some of its components) with each component as its own process (`keygate start <component>`), on free ports with
 * fresh key and data directories, so that a test can kill one (SIGKILL included), restart it on the same data,
 * and read what the kernel says about it (resident memory, open descriptors). Unlike system.ts, there is no
 * supervisor between the test and the components: a component that dies stays dead until restarted.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ordersClientSettings } from '../../bin/orders-client.js'
import { isReady } from '../../bin/supervisor.js'
import { type Component, COMPONENTS } from '../../lib/config.js'
import { freePort } from './system.js'

const ROOT = new URL('../../', import.meta.url).pathname
/** How long a component may take to answer /readyz (on its ops listener) with 200 after it was spawned, in milliseconds. */
const READY_TIMEOUT_MS = 60_000
/** How long a component gets to exit after SIGTERM before it is killed, in milliseconds. */
const STOP_TIMEOUT_MS = 15_000

export interface ProcessSystem {
  urls: Record<Component, string>
  /** Each component's ops listener (`/readyz`, `/metrics`), on loopback. */
  opsUrls: Record<Component, string>
  /** The environment every component was started with. */
  env: Record<string, string>
  dataDir: string
  keysDir: string
  /** The current process id of a component. */
  pid(name: Component): number
  /** Starts a component that is not running (again, on the same ports and data) and waits until it is ready. */
  start(name: Component): Promise<void>
  /** Sends a signal to a component and resolves once it has exited. */
  kill(name: Component, signal?: NodeJS.Signals): Promise<void>
  /** Every line every process printed so far (restarted ones included), prefixed with the component's name. */
  output(): string
  /** Runs `keygate <args…>` (the command line) with the same settings, on the same key and data directories. */
  cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }>
  /** Stops every component (SIGTERM) and removes the directories. */
  stop(): Promise<void>
}

export interface StartProcessesOptions {
  /** Settings for every component beside the test defaults. */
  env?: Record<string, string>
  /** Which components to start (default: all of them; the issuer, when listed, first). */
  components?: readonly Component[]
}

interface Running {
  child: ChildProcess
  exited: Promise<void>
  /** The child said over IPC that both its listeners are bound (lib/server.ts `reportListening`). */
  listening: boolean
}

/** Starts of the whole system tried when a port it was given had been taken before a component bound it. */
const START_ATTEMPTS = 3

/** A component could not bind a port `freePort` had found free: another process took it in between. */
class PortTaken extends Error {}

/**
 * Starts every component (the issuer first) and resolves once each has said it listens (over IPC) and
 * answers /readyz with 200 on its ops listener.
 * @example
 * const system = await startProcesses({ env: { LOG_LEVEL: 'debug' } })
 * t.teardown(() => system.stop())
 * await system.kill('issuer', 'SIGKILL')
 * await system.start('issuer')
 */
export async function startProcesses(options: StartProcessesOptions = {}): Promise<ProcessSystem> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options)
    } catch (err) {
      // The ports come free from the kernel, but are only bound when each component starts: a process of
      // another test may take one first. Then everything starts again on new ports.
      if (!(err instanceof PortTaken) || attempt === START_ATTEMPTS) throw err
    }
  }
}

async function startOnce(options: StartProcessesOptions): Promise<ProcessSystem> {
  const work = mkdtempSync(join(tmpdir(), 'kg-processes-'))
  const ports = {} as Record<Component, number>
  const opsPorts = {} as Record<Component, number>
  for (const name of COMPONENTS) {
    ports[name] = await freePort()
    opsPorts[name] = await freePort()
  }
  const urlsOf = (p: Record<Component, number>) =>
    Object.fromEntries(COMPONENTS.map((c) => [c, `http://127.0.0.1:${p[c]}`])) as Record<Component, string>
  const urls = urlsOf(ports)
  const opsUrls = urlsOf(opsPorts)
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    DATA_DIR: join(work, 'data'),
    KEYS_DIR: join(work, 'keys'),
    LOG_PRETTY: 'false',
    ...Object.fromEntries(COMPONENTS.map((c) => [`${c.toUpperCase()}_PORT`, String(ports[c])])),
    ...Object.fromEntries(COMPONENTS.map((c) => [`${c.toUpperCase()}_OPS_PORT`, String(opsPorts[c])])),
    ...options.env,
  }
  const lines: string[] = []
  const running = new Map<Component, Running>()
  /** Children a test stopped or killed (through `kill` or `stop`): their exit is expected. */
  const stopping = new WeakSet<ChildProcess>()

  const keygate = (args: string[], ipc = false) =>
    spawn(
      process.execPath,
      ['--conditions=keygate-source', '--import', 'tsx', join(ROOT, 'bin/keygate.ts'), ...args],
      {
        cwd: ROOT,
        env,
        stdio: ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
      },
    )

  const spawnComponent = (name: Component) => {
    const child = keygate(['start', name], true)
    let partial = ''
    const collect = (chunk: Buffer) => {
      const text = partial + chunk.toString('utf8')
      const complete = text.split('\n')
      partial = complete.pop()!
      for (const line of complete) lines.push(`${name} | ${line}`)
    }
    child.stdout!.on('data', collect)
    child.stderr!.on('data', collect)
    const exited = new Promise<void>((resolve) =>
      child.once('exit', (code, signal) => {
        if (partial) lines.push(`${name} | ${partial}`)
        // A component no test asked to stop died: say so where CI's log shows it, with its last words,
        // or a test only sees connections refused.
        if (!stopping.has(child)) {
          process.stderr.write(
            `${name} exited unasked (code ${code}, signal ${signal}):\n${tail(lines, name)}\n`,
          )
        }
        resolve()
      }),
    )
    const state: Running = { child, exited, listening: false }
    child.on('message', (message: { type?: string }) => {
      if (message?.type === 'listening') state.listening = true
    })
    running.set(name, state)
    return child
  }

  const waitReady = async (name: Component) => {
    const deadline = Date.now() + READY_TIMEOUT_MS
    const state = running.get(name)!
    const { child } = state
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        const last = tail(lines, name)
        const Failure = last.includes('EADDRINUSE') ? PortTaken : Error
        throw new Failure(`${name} exited while starting:\n${last}`)
      }
      // Until the child says it listens, whatever answers on its ops port is another process.
      if (state.listening && (await isReady(opsUrls[name]))) return
      if (Date.now() > deadline)
        throw new Error(`${name} not ready after ${READY_TIMEOUT_MS} ms:\n${tail(lines, name)}`)
      await new Promise((r) => setTimeout(r, 100))
    }
  }

  const system: ProcessSystem = {
    urls,
    opsUrls,
    env,
    dataDir: env.DATA_DIR!,
    keysDir: env.KEYS_DIR!,
    pid(name) {
      const pid = running.get(name)?.child.pid
      if (pid === undefined) throw new Error(`${name} is not running`)
      return pid
    },
    async start(name) {
      const current = running.get(name)?.child
      if (current && current.exitCode === null && current.signalCode === null) {
        throw new Error(`${name} is already running`)
      }
      spawnComponent(name)
      await waitReady(name)
    },
    async kill(name, signal = 'SIGTERM') {
      const r = running.get(name)
      if (!r) return
      stopping.add(r.child)
      r.child.kill(signal)
      await r.exited
    },
    output: () => lines.join('\n'),
    cli(args) {
      const child = keygate(args)
      let stdout = ''
      let stderr = ''
      child.stdout!.on('data', (d) => (stdout += d))
      child.stderr!.on('data', (d) => (stderr += d))
      return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })))
    },
    async stop() {
      for (const { child } of running.values()) {
        stopping.add(child)
        if (child.exitCode === null) child.kill('SIGTERM')
      }
      const killer = setTimeout(() => {
        for (const { child } of running.values()) if (child.exitCode === null) child.kill('SIGKILL')
      }, STOP_TIMEOUT_MS)
      await Promise.all([...running.values()].map((r) => r.exited))
      clearTimeout(killer)
      rmSync(work, { recursive: true, force: true })
    },
  }

  try {
    const names = options.components ?? COMPONENTS
    // As `keygate start` does: orders gets its own client at the issuer (token exchange for profile).
    if (names.includes('issuer') && names.includes('orders'))
      Object.assign(env, await ordersClientSettings(env))
    if (names.includes('issuer')) {
      spawnComponent('issuer')
      await waitReady('issuer')
    }
    const others = names.filter((c) => c !== 'issuer')
    for (const name of others) spawnComponent(name)
    await Promise.all(others.map(waitReady))
  } catch (err) {
    await system.stop()
    throw err
  }
  return system
}

function tail(lines: string[], name: string): string {
  return lines
    .filter((l) => l.startsWith(`${name} |`))
    .slice(-20)
    .join('\n')
}

/** What the kernel says about a process: resident memory and open descriptors (Linux /proc). */
export interface ProcessStats {
  /** Resident set size, in KiB. */
  rssKb: number
  /** Open file descriptors. */
  fds: number
  /** Of which sockets. */
  sockets: number
}

/**
 * Reads /proc/<pid>/status and /proc/<pid>/fd.
 * @example
 * const { rssKb, fds, sockets } = processStats(system.pid('gateway'))
 */
export function processStats(pid: number): ProcessStats {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const rssKb = Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1] ?? Number.NaN)
  let fds = 0
  let sockets = 0
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`)
      fds++
      if (target.startsWith('socket:')) sockets++
    } catch {
      // closed between the listing and the readlink
    }
  }
  return { rssKb, fds, sockets }
}
