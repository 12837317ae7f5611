/**
 * Components started one by one as real processes (`keygate start <component>`), so a test can kill and
 * restart one of them — what the supervisor of `npm start` deliberately does not allow.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { type Component, COMPONENTS } from '../../lib/config.js'
import { freePort } from './system.js'

const ROOT = new URL('../../', import.meta.url).pathname

export interface ComponentProcess {
  readonly name: Component
  readonly url: string
  /** Output so far. */
  output(): string
  /** Sends a signal and waits for the process to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>
  /** Starts the component again with the same settings; resolves once it is ready. */
  restart(): Promise<void>
}

export interface Components {
  env: Record<string, string>
  get(name: Component): ComponentProcess
  /** Runs `keygate <args…>` (the command line) with the same settings. */
  cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }>
  stop(): Promise<void>
}

async function ready(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      const res = await request(`${url}/readyz`)
      await res.body.dump()
      if (res.statusCode === 200) return
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} not ready after ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/**
 * Starts every component (or `names`) as its own process on free ports and waits until all are ready.
 * @example
 * const system = await startComponents({ REVOCATION_FEED_MAX_STALE: '2s' })
 * await system.get('issuer').kill('SIGKILL')
 */
export async function startComponents(
  extraEnv: Record<string, string> = {},
  names: readonly Component[] = COMPONENTS,
): Promise<Components> {
  const work = mkdtempSync(join(tmpdir(), 'kg-components-'))
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    DATA_DIR: join(work, 'data'),
    KEYS_DIR: join(work, 'keys'),
    LOG_PRETTY: 'false',
  }
  for (const name of COMPONENTS) env[`${name.toUpperCase()}_PORT`] = String(await freePort())
  Object.assign(env, extraEnv)
  const processes = new Map<Component, ComponentProcess>()

  for (const name of names) {
    let child: ChildProcess
    let out = ''
    const url = `http://127.0.0.1:${env[`${name.toUpperCase()}_PORT`]}`
    const spawnIt = () => {
      child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bin/keygate.ts'), 'start', name], {
        cwd: ROOT,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      child.stdout!.on('data', (d) => (out += d))
      child.stderr!.on('data', (d) => (out += d))
    }
    spawnIt()
    processes.set(name, {
      name,
      url,
      output: () => out,
      async kill(signal = 'SIGTERM') {
        if (child.exitCode !== null || child.signalCode !== null) return
        const exited = new Promise((r) => child.once('exit', r))
        child.kill(signal)
        await exited
      },
      async restart() {
        spawnIt()
        await ready(url, 60_000)
      },
    })
  }
  await Promise.all([...processes.values()].map((p) => ready(p.url, 60_000)))

  return {
    env,
    get(name) {
      const p = processes.get(name)
      if (!p) throw new Error(`${name} was not started`)
      return p
    },
    cli(args) {
      const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bin/keygate.ts'), ...args], {
        cwd: ROOT,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', (d) => (stdout += d))
      child.stderr.on('data', (d) => (stderr += d))
      return new Promise((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })))
    },
    async stop() {
      await Promise.all([...processes.values()].map((p) => p.kill('SIGTERM')))
      rmSync(work, { recursive: true, force: true })
    },
  }
}
