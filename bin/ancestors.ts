/**
 * The processes above this one, watched so that `keygate start` never outlives what started it.
 *
 * `npm start` ran it as npm → sh → tsx → node. A signal sent to npm (SIGTERM, SIGINT) is forwarded to sh
 * only, which dies of SIGTERM and ignores SIGINT without passing either on; SIGHUP or SIGKILL kill npm
 * alone. Each time tsx and the supervisor lived on, orphaned, with every component holding its port. The
 * script now `exec`s tsx (npm → tsx → node: npm's SIGTERM and SIGINT reach tsx, which relays them), and for
 * what sends no signal at all the supervisor watches the chain: when any process above it is gone (or was
 * replaced by another with the same pid), it stops everything it started — npm killed by SIGHUP or SIGKILL,
 * a shell between gone, or the parent that ran npm dead.
 */
import { readFileSync } from 'node:fs'

/** How often the chain is checked, in milliseconds. */
export const DEFAULT_ANCESTOR_POLL_MS = 500

interface Ancestor {
  pid: number
  /** Start time in clock ticks since boot (/proc/<pid>/stat field 22): tells a reused pid apart. */
  startTicks: string
}

/**
 * pid → (parent pid, start time), from /proc/<pid>/stat; undefined when it cannot be read (gone, or not
 * Linux) or is a zombie (dead, not yet reaped by its parent).
 */
function stat(pid: number): { ppid: number; startTicks: string } | undefined {
  let text: string
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined
  }
  // `pid (comm) state ppid …`: comm may hold spaces and parentheses, so fields count from the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
  const ppid = Number(fields[1])
  const startTicks = fields[19]
  if (fields[0] === 'Z' || fields[0] === 'X') return undefined
  if (!Number.isInteger(ppid) || startTicks === undefined) return undefined
  return { ppid, startTicks }
}

/** The chain above `pid`, nearest first, up to (not including) init. Empty where /proc is not available. */
export function ancestorsOf(pid: number): Ancestor[] {
  const chain: Ancestor[] = []
  let current = stat(pid)?.ppid
  while (current !== undefined && current > 1 && chain.length < 64) {
    const s = stat(current)
    if (!s) break
    chain.push({ pid: current, startTicks: s.startTicks })
    current = s.ppid
  }
  return chain
}

/**
 * Calls `onGone` once, with the pid of the first process found gone, when a process above this one ends
 * (its parent as `process.ppid` changing where /proc is not available). Returns a function that stops
 * watching; the timer never keeps the process alive by itself.
 * @example
 * const unwatch = watchAncestors((pid) => stop(`process ${pid} above us is gone`))
 */
export function watchAncestors(
  onGone: (pid: number) => void,
  intervalMs = DEFAULT_ANCESTOR_POLL_MS,
): () => void {
  const chain = ancestorsOf(process.pid)
  const parent = process.ppid
  const timer = setInterval(() => {
    const gone =
      process.ppid !== parent ? parent : chain.find((a) => stat(a.pid)?.startTicks !== a.startTicks)?.pid
    if (gone === undefined) return
    clearInterval(timer)
    onGone(gone)
  }, intervalMs)
  timer.unref()
  return () => clearInterval(timer)
}
