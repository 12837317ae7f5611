/**
 * The machine the bench runs on: how many cores, whether processes can be pinned (taskset), which core the
 * servers get and which the load generator gets, what a process costs (RSS and CPU time from /proc), and
 * which tools it has (installing a missing one from Debian's packages where it can).
 */
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { availableParallelism, cpus } from 'node:os'

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on every Linux this runs on). */
const CLOCK_TICKS_PER_S = 100

export interface Placement {
  cores: number
  /** taskset exists and there are at least two cores. */
  pinning: boolean
  /** Core of the servers (proxy and upstream), when pinning. */
  serverCpu: number | undefined
  /** Core of the load generator, when pinning. */
  loadCpu: number | undefined
  cpuModel: string
}

/** Whether `command` is on PATH. */
export function onPath(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0
}

/**
 * Installs the Debian package `name` (a tool of the same name) with apt-get, when this runs as root where
 * apt-get exists, refreshing the package lists if the first try fails; whether the tool is there afterwards.
 */
export function aptInstall(name: string, log: (line: string) => void): boolean {
  if (process.getuid?.() !== 0 || !onPath('apt-get')) return false
  log(`bench: ${name} is missing; installing it with apt-get (Debian package ${name})`)
  spawnSync('sh', ['-c', `apt-get install -y ${name} || (apt-get update && apt-get install -y ${name})`], {
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  return onPath(name)
}

export const hasTaskset = onPath('taskset')

/** Servers on core 0, the load generator on the last core, as the reference figures were taken. */
export function placement(pin: boolean): Placement {
  const cores = availableParallelism()
  const pinning = pin && hasTaskset && cores >= 2
  return {
    cores,
    pinning,
    serverCpu: pinning ? 0 : undefined,
    loadCpu: pinning ? cores - 1 : undefined,
    cpuModel: cpus()[0]?.model ?? 'unknown',
  }
}

/**
 * The cores this process was given, read before pinSelf narrows them (taskset's list syntax): what a
 * process the bench leaves unpinned may use.
 */
const givenCores = (() => {
  try {
    return /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]
  } catch {
    return undefined // no /proc: no taskset either
  }
})()
const everyCore = () => givenCores ?? `0-${availableParallelism() - 1}`

/**
 * `command` prefixed with `taskset -c <cpu>` when a core is given, and with every core when none is: a child
 * would otherwise inherit the core the bench pinned itself to (pinSelf), and "not pinned" would mean
 * sharing the load generator's core.
 */
export function pinned(cpu: number | undefined, command: string[]): string[] {
  if (!hasTaskset) return command
  return ['taskset', '-c', cpu === undefined ? everyCore() : String(cpu), ...command]
}

/** Pins a running process (every thread) to `cpu`, or lets it run on every core when `cpu` is undefined. */
export function pinProcess(pid: number, cpu: number | undefined): void {
  if (hasTaskset)
    spawnSync('taskset', ['-a', '-cp', cpu === undefined ? everyCore() : String(cpu), String(pid)], {
      stdio: 'ignore',
    })
}

/** Pins this process (every thread) to `cpu`; nothing when `cpu` is undefined. */
export function pinSelf(cpu: number | undefined): void {
  if (cpu !== undefined) pinProcess(process.pid, cpu)
}

/** `pid` and its descendants (cluster workers). */
function processTree(pid: number): number[] {
  const all = [pid]
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const children = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim()
      for (const child of children ? children.split(' ') : []) all.push(...processTree(Number(child)))
    }
  } catch {
    // gone, or no /proc: what was found is all there is
  }
  return all
}

/** Resident memory of a process and its descendants, in bytes (0 without /proc). */
export function rssBytes(pid: number): number {
  let total = 0
  for (const p of processTree(pid)) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))
      if (m) total += Number(m[1]) * 1024
    } catch {
      // exited meanwhile
    }
  }
  return total
}

/** CPU time (user + system) of a process and its descendants so far, in microseconds (0 without /proc). */
export function cpuMicros(pid: number): number {
  let ticks = 0
  for (const p of processTree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      ticks += Number(fields[11]) + Number(fields[12])
    } catch {
      // exited meanwhile
    }
  }
  return (ticks / CLOCK_TICKS_PER_S) * 1e6
}
