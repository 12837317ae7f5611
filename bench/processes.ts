/**
 * Starting and stopping the benchmarked servers, each its own Node process (pinned when the machine allows),
 * waiting for the `listening` message every keygate entry point and bench server sends over IPC.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { pinned } from './machine.js'

export const ROOT = join(import.meta.dirname, '..')
/** How long a server gets to listen, in milliseconds. */
const START_TIMEOUT_MS = 60_000
/** How long a server gets to exit after SIGTERM before SIGKILL, in milliseconds. */
const STOP_TIMEOUT_MS = 15_000
/** Lines of a server's stderr kept to explain a failure. */
const STDERR_LINES_KEPT = 20

export interface ServerProcess {
  name: string
  url: string
  pid: number
  child: ChildProcess
  stop(): Promise<void>
}

export interface ServerSpec {
  name: string
  /** Script (relative to the repository) and its arguments, run with `node --import tsx`. */
  script: string
  args?: string[]
  env?: Record<string, string>
  cpu: number | undefined
  /** Extra Node flags (`--cpu-prof`, …). */
  nodeFlags?: string[]
}

/** Starts a server and resolves once it listens. */
export async function startServer(spec: ServerSpec): Promise<ServerProcess> {
  const [command, ...args] = pinned(spec.cpu, [
    process.execPath,
    ...(spec.nodeFlags ?? []),
    '--conditions=keygate-source',
    '--import',
    'tsx',
    join(ROOT, spec.script),
    ...(spec.args ?? []),
  ])
  const child = spawn(command!, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', LOG_PRETTY: 'false', ...spec.env },
    // Logs go nowhere (as cheaply as a server can write them); stderr is kept to explain failures.
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  })
  const stderr: string[] = []
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr.push(...chunk.toString().split('\n'))
    stderr.splice(0, Math.max(0, stderr.length - STDERR_LINES_KEPT))
  })
  const exited = once(child, 'exit')
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`bench: ${spec.name} did not listen in time`)),
      START_TIMEOUT_MS,
    )
    child.on('message', (message: { type?: string; address?: string }) => {
      if (message?.type === 'listening' && message.address) {
        clearTimeout(timer)
        resolve(message.address)
      }
    })
    void exited.then(([code]) => {
      clearTimeout(timer)
      reject(new Error(`bench: ${spec.name} exited (code ${code}) before listening:\n${stderr.join('\n')}`))
    })
  })
  return {
    name: spec.name,
    url,
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

/** A port free on loopback now (for servers that must know an address before another starts). */
export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}
