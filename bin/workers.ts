/**
 * A component as several processes on one port (node:cluster), for `keygate start gateway --workers N` or
 * GATEWAY_WORKERS: the primary forks N workers, each of which builds and listens exactly as a single process
 * would; the primary accepts connections and hands them out in turn (cluster's round-robin), so each worker
 * runs on its own core. The primary says `listening` to a supervisor once every worker listens; a worker
 * that dies after starting is replaced; on SIGTERM/SIGINT every worker drains its in-flight requests and
 * the primary exits after the last one.
 */
import cluster, { type Worker } from 'node:cluster'
import closeWithGrace from 'close-with-grace'
import { DEFAULT_SHUTDOWN_GRACE_MS, reportListening } from '../lib/server.js'

/** Message from the primary asking a worker to shut down gracefully. */
const SHUTDOWN = 'keygate:shutdown'
/** Time past the workers' own grace period after which the primary kills what is left, in milliseconds. */
const KILL_AFTER_MS = DEFAULT_SHUTDOWN_GRACE_MS + 5_000
/** Replacements of crashed workers allowed per minute before the primary gives up. */
const MAX_RESTARTS_PER_MINUTE = 10

/** True in a process the primary forked: it should start the component itself. */
export function isWorker(): boolean {
  return cluster.isWorker
}

/**
 * In a worker: shut down gracefully when the primary asks (by sending ourselves SIGTERM, once: the terminal
 * may have signalled the whole process group already, and a second signal means "exit now").
 */
export function followPrimary(): void {
  process.on('message', (message: { type?: string }) => {
    if (message?.type === SHUTDOWN && !(closeWithGrace as { closing?: boolean }).closing) {
      process.kill(process.pid, 'SIGTERM')
    }
  })
}

/**
 * In the primary: runs `count` workers until a signal; resolves with the process exit code.
 * @example
 * if (isWorker()) { followPrimary(); await startGateway(config) } else process.exitCode = await runWorkers(2, 'gateway')
 */
export async function runWorkers(count: number, name: string): Promise<number> {
  const listening = new Set<number>()
  let address: string | undefined
  let stopping = false
  const restarts: number[] = []
  const log = (message: string) => console.error(`keygate ${name} primary: ${message}`)

  return new Promise<number>((resolve) => {
    const fork = (): Worker => {
      const worker = cluster.fork()
      worker.on('message', (message: { type?: string; address?: string; ops?: string }) => {
        if (message?.type !== 'listening' || !message.address || !message.ops) return
        listening.add(worker.id)
        if (address === undefined && listening.size === count) {
          address = message.address
          // Under `keygate start`: the component is up once every worker listens (the workers share both
          // ports, the public one and the ops one).
          reportListening({ address, ops: message.ops }, () => stop(0))
        }
      })
      return worker
    }

    const stop = (code: number) => {
      if (stopping) return
      stopping = true
      // The worker whose exit brought us here may still be listed: wait only on the living.
      const workers = Object.values(cluster.workers ?? {}).filter(
        (w): w is Worker => w !== undefined && !w.isDead(),
      )
      if (workers.length === 0) return resolve(code)
      const killer = setTimeout(() => workers.forEach((w) => w.process.kill('SIGKILL')), KILL_AFTER_MS)
      killer.unref()
      let left = workers.length
      for (const worker of workers) {
        worker.once('exit', () => {
          if (--left === 0) {
            clearTimeout(killer)
            resolve(code)
          }
        })
        // A worker still starting may not listen for the message yet, and has no request to drain.
        if (listening.has(worker.id) && worker.isConnected()) worker.send({ type: SHUTDOWN })
        else worker.process.kill('SIGTERM')
      }
    }

    cluster.on('exit', (worker, code, signal) => {
      const wasListening = listening.delete(worker.id)
      if (stopping) return
      if (!wasListening) {
        log(`worker ${worker.process.pid} failed to start (exit code ${code ?? signal}); stopping`)
        return stop(1)
      }
      const now = Date.now()
      restarts.push(now)
      while (restarts.length > 0 && restarts[0]! < now - 60_000) restarts.shift()
      if (restarts.length > MAX_RESTARTS_PER_MINUTE) {
        log(`workers keep dying (${restarts.length} in a minute); stopping`)
        return stop(1)
      }
      log(`worker ${worker.process.pid} died (exit code ${code ?? signal}); starting another`)
      fork()
    })

    process.once('SIGTERM', () => stop(0))
    process.once('SIGINT', () => stop(0))
    for (let i = 0; i < count; i++) fork()
  })
}
