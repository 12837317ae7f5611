/**
 * `npm start` as a user runs it — npm → tsx → keygate's supervisor → five components, a real process tree —
 * killed the ways it gets killed: SIGTERM, SIGINT or SIGHUP to npm, npm killed outright, and the process
 * that ran npm killed. Each time nothing it started may live on or keep a port. (npm forwarded SIGTERM and
 * SIGINT to the shell it ran the script in, which did not pass them on: `kill <pid of npm start>` left the
 * supervisor and every component running. See bin/ancestors.ts.)
 *
 * Each case starts the whole system once; they run one after the other on a loaded machine.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { ancestorsOf } from '../../bin/ancestors.js'
import { COMPONENTS } from '../../lib/config.js'
import { freePort } from '../helpers/system.js'

const ROOT = join(import.meta.dirname, '..', '..')
/** How long the whole system may take to come up on a loaded machine, in milliseconds. */
const UP_TIMEOUT_MS = 90_000
/** How long everything may take to be gone after the kill (the supervisor's stop grace is 12 s). */
const GONE_TIMEOUT_MS = 40_000

t.setTimeout(900_000)

/** Every process below `pid` (Linux /proc), children of any of its threads included. */
function descendants(pid: number): number[] {
  const found: number[] = []
  let tasks: string[] = []
  try {
    tasks = readdirSync(`/proc/${pid}/task`)
  } catch {
    return found
  }
  for (const task of tasks) {
    let list = ''
    try {
      list = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim()
    } catch {
      continue
    }
    for (const child of list ? list.split(' ').map(Number) : []) found.push(child, ...descendants(child))
  }
  return found
}

/** Alive, and not a zombie waiting for its parent. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return !/^Z|^X/.test(stat.slice(stat.lastIndexOf(')') + 2))
  } catch {
    return false
  }
}

async function portFree(port: number): Promise<boolean> {
  const server = createServer()
  return new Promise((resolve) => {
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

interface Started {
  /** The process the test kills: npm, or the shell that ran npm. */
  top: ChildProcess
  npmPid: number
  /** npm and everything below it, once the system is up. */
  tree: number[]
  ports: number[]
  output: () => string
}

/**
 * `npm start` (its build step skipped: the client bundle is not what is tested) on free ports, through a
 * shell that stays its parent when `viaShell`. Resolves once the supervisor announced the system.
 */
async function npmStart(t: Test, viaShell: boolean): Promise<Started> {
  const work = mkdtempSync(join(tmpdir(), 'kg-npm-start-'))
  t.teardown(() => rmSync(work, { recursive: true, force: true }))
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    DATA_DIR: join(work, 'data'),
    KEYS_DIR: join(work, 'keys'),
    LOG_PRETTY: 'false',
    LOG_LEVEL: 'warn',
  }
  const ports: number[] = []
  for (const c of COMPONENTS) {
    for (const setting of [`${c.toUpperCase()}_PORT`, `${c.toUpperCase()}_OPS_PORT`]) {
      const port = await freePort()
      env[setting] = String(port)
      ports.push(port)
    }
  }
  const npm = ['npm', 'run', '--ignore-scripts', 'start']
  // `; exit` keeps the shell as npm's parent rather than letting it exec npm.
  const [command, ...args] = viaShell ? ['sh', '-c', `${npm.join(' ')}; exit $?`] : npm
  const top = spawn(command!, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  top.stdout!.on('data', (d) => (out += d))
  top.stderr!.on('data', (d) => (out += d))
  const started: Started = { top, npmPid: top.pid!, tree: [], ports, output: () => out }
  // Whatever a failed case leaves behind is killed by pid: only processes this test started.
  t.teardown(() => {
    for (const pid of [top.pid!, ...started.tree]) if (alive(pid)) process.kill(pid, 'SIGKILL')
  })
  const deadline = Date.now() + UP_TIMEOUT_MS
  while (!out.includes('keygate is up')) {
    if (top.exitCode !== null || Date.now() > deadline) throw new Error(`npm start did not come up:\n${out}`)
    await new Promise((r) => setTimeout(r, 200))
  }
  if (viaShell) started.npmPid = descendants(top.pid!)[0]!
  started.tree = [started.npmPid, ...descendants(started.npmPid)]
  return started
}

async function everythingGone(t: Test, started: Started, what: string): Promise<void> {
  t.ok(
    started.tree.length >= 8,
    `a real tree: npm, tsx, the supervisor, five components (${started.tree.length})`,
  )
  const deadline = Date.now() + GONE_TIMEOUT_MS
  while (started.tree.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200))
  t.same(started.tree.filter(alive), [], `${what}: no process of the tree lives on`)
  const held = []
  for (const port of started.ports) if (!(await portFree(port))) held.push(port)
  t.same(held, [], `${what}: every port is free again`)
}

for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGKILL'] as const) {
  t.test(`kill -${signal.slice(3)} <pid of npm start> stops everything it started`, async (t) => {
    const started = await npmStart(t, false)
    process.kill(started.npmPid, signal)
    await everythingGone(t, started, signal)
    const reason =
      signal === 'SIGTERM' || signal === 'SIGINT'
        ? new RegExp(`keygate: ${signal} received, stopping every component`)
        : /keygate: process \d+ above keygate is gone, stopping every component/
    if (signal !== 'SIGKILL') t.match(started.output(), reason, 'the supervisor says why it stops')
  })
}

t.test('the process that ran npm start dying stops everything too', async (t) => {
  const started = await npmStart(t, true)
  t.not(started.npmPid, started.top.pid, 'npm runs below a shell of its own')
  started.top.kill('SIGKILL')
  await everythingGone(t, started, 'its parent killed')
})

t.test('ancestorsOf lists the chain above a process, nearest first', async (t) => {
  const chain = ancestorsOf(process.pid).map((a) => a.pid)
  if (!existsSync('/proc/self/stat')) {
    t.same(chain, [], 'nothing where /proc is not available')
    return
  }
  t.equal(chain[0], process.ppid, 'the parent first')
  t.notOk(chain.includes(1), 'init is never watched')
  t.notOk(chain.includes(process.pid))
})
