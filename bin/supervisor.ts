/**
 * `keygate start` with no component: every component as its own child process on this machine, their log
 * lines prefixed with their names, stopped together on Ctrl-C. A component that fails to start is named
 * with its last words, the others are stopped, and the command exits non-zero.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { request } from 'undici'
import type { Component } from '../lib/config.js'
import { watchAncestors } from './ancestors.js'

/** How long components get to report they listen, in milliseconds. */
export const DEFAULT_START_TIMEOUT_MS = 60_000
/** How long components get to stop after SIGTERM before SIGKILL, in milliseconds. */
export const STOP_TIMEOUT_MS = 12_000

/** Start order: the issuer first (everyone needs its keys), the gateway last (it needs everyone). */
export const START_ORDER: Component[] = ['issuer', 'profile', 'orders', 'files', 'gateway']

export interface SuperviseOptions {
  components?: Component[]
  env?: NodeJS.ProcessEnv
  /** Where prefixed log lines go. */
  out?: NodeJS.WritableStream
  startTimeoutMs?: number
  /**
   * Printed once everything is ready (every component answered `/readyz` on the ops listener it reported),
   * given the ops listeners' base URLs.
   */
  banner: (ops: Partial<Record<Component, string>>) => string
}

interface Child {
  name: Component
  process: ChildProcess
  lastLines: string[]
  listening: boolean
  /** Base URL of the component's ops listener, once it reported listening. */
  ops?: string
  exited: Promise<number | null>
}

const width = Math.max(...START_ORDER.map((c) => c.length))

/** The command that runs one component the way this process was run (tsx from a checkout, or built JS). */
function componentCommand(name: Component): { command: string; args: string[] } {
  const script = process.argv[1]
  if (!script) throw new Error('keygate: cannot find the keygate script to start components with')
  return { command: process.execPath, args: [...process.execArgv, script, 'start', name] }
}

function startChild(name: Component, env: NodeJS.ProcessEnv, out: NodeJS.WritableStream): Child {
  const { command, args } = componentCommand(name)
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] })
  const state: Child = {
    name,
    process: child,
    lastLines: [],
    listening: false,
    exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))),
  }
  const prefix = `${name.padEnd(width)} | `
  for (const stream of [child.stdout!, child.stderr!]) {
    createInterface({ input: stream }).on('line', (line) => {
      state.lastLines.push(line)
      if (state.lastLines.length > 8) state.lastLines.shift()
      out.write(`${prefix}${line}\n`)
    })
  }
  child.on('message', (message: { type?: string; ops?: string }) => {
    if (message?.type !== 'listening') return
    state.listening = true
    if (message.ops) state.ops = message.ops
  })
  return state
}

async function stopAll(children: Child[]): Promise<void> {
  for (const c of children) if (c.process.exitCode === null) c.process.kill('SIGTERM')
  const killer = setTimeout(() => {
    for (const c of children) if (c.process.exitCode === null) c.process.kill('SIGKILL')
  }, STOP_TIMEOUT_MS)
  await Promise.all(children.map((c) => c.exited))
  clearTimeout(killer)
}

/**
 * True once the ops listener at `url` answers `/readyz` with 200 (false while it cannot be reached).
 * @example
 * await isReady('http://127.0.0.1:9400')
 */
export async function isReady(url: string): Promise<boolean> {
  try {
    const res = await request(`${url}/readyz`, { headersTimeout: 2_000, bodyTimeout: 2_000 })
    await res.body.dump()
    return res.statusCode === 200
  } catch {
    return false
  }
}

/**
 * Runs the components until SIGINT, SIGTERM or SIGHUP, or until a process above this one is gone; resolves with the exit code for the command.
 * @example
 * process.exitCode = await supervise({ banner: () => 'up' })
 */
export async function supervise(options: SuperviseOptions): Promise<number> {
  const out = options.out ?? process.stdout
  const env = { ...(options.env ?? process.env) }
  if (env.LOG_PRETTY === undefined && process.stdout.isTTY) env.LOG_PRETTY = 'true'
  const children = (options.components ?? START_ORDER).map((name) => startChild(name, env, out))

  // Whoever read our output may be gone with what started us (a pipe with no reader): the components must
  // still be stopped, so a failed write is not an error that ends this process.
  out.on('error', () => {})

  let stopping = false
  let unwatch = () => {}
  const stopped = new Promise<number>((resolve) => {
    const stop = (why: string) => {
      if (stopping) return
      stopping = true
      unwatch()
      out.write(`keygate: ${why}, stopping every component\n`)
      void stopAll(children).then(() => resolve(0))
    }
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.once(signal, () => stop(`${signal} received`))
    }
    // Whatever happens to what started us, nothing we started outlives it (see ancestors.ts).
    unwatch = watchAncestors((pid) => stop(`process ${pid} above keygate is gone`))
  })

  const failed = new Promise<number>((resolve) => {
    for (const c of children) {
      void c.exited.then(async (code) => {
        if (stopping) return
        stopping = true
        unwatch()
        const why = c.lastLines.map((l) => `    ${l}`).join('\n')
        out.write(
          `keygate: ${c.name} ${c.listening ? 'stopped' : 'failed to start'} (exit code ${code})\n${why}\n`,
        )
        await stopAll(children)
        resolve(1)
      })
    }
  })

  const started = (async () => {
    const deadline = Date.now() + (options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS)
    while (!stopping && Date.now() < deadline) {
      const ready =
        children.every((c) => c.listening && c.ops) &&
        (await Promise.all(children.map((c) => isReady(c.ops!)))).every(Boolean)
      if (ready) {
        out.write(`${options.banner(Object.fromEntries(children.map((c) => [c.name, c.ops!])))}\n`)
        return
      }
      await new Promise((r) => setTimeout(r, 200))
    }
    if (!stopping) {
      const waiting = children.filter((c) => !c.listening).map((c) => c.name)
      out.write(
        `keygate: not ready after ${(options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS) / 1000} s` +
          (waiting.length ? ` (not listening: ${waiting.join(', ')})` : ' (see /readyz of each component)') +
          '\n',
      )
    }
  })()

  void started
  return Promise.race([stopped, failed])
}
