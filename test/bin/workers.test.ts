import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { startTokenIssuer } from '../helpers/token-issuer.js'

const ROOT = join(import.meta.dirname, '..', '..')

/** The gateway's processes below `pid` (Linux /proc). */
function children(pid: number): number[] {
  try {
    const list = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim()
    return list ? list.split(' ').map(Number) : []
  } catch {
    return []
  }
}

async function startGateway(
  t: Test,
  args: string[],
  env: Record<string, string> = {},
  stdout: 'ignore' | 'pipe' = 'ignore',
) {
  const issuer = await startTokenIssuer()
  t.teardown(() => issuer.close())
  const child: ChildProcess = spawn(
    process.execPath,
    [
      '--conditions=keygate-source',
      '--import',
      'tsx',
      join(ROOT, 'bin/keygate.ts'),
      'start',
      'gateway',
      ...args,
    ],
    {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        GATEWAY_PORT: '0',
        GATEWAY_OPS_PORT: '0',
        LOG_LEVEL: 'warn',
        LOG_PRETTY: 'false',
        KEYS_DIR: t.testdir(),
        DATA_DIR: join(t.testdirName, 'data'),
        ISSUER_URL: issuer.url,
        REVOCATION_FEED: 'off',
        TRUSTED_ISSUERS: JSON.stringify([{ issuer: issuer.url, audiences: [issuer.audience] }]),
        ...env,
      },
      stdio: ['ignore', stdout, 'pipe', 'ipc'],
    },
  )
  child.stdout?.resume()
  let stderr = ''
  child.stderr!.on('data', (d) => (stderr += d))
  const exited = once(child, 'exit') as Promise<[number | null, string | null]>
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  const [message] = (await Promise.race([
    once(child, 'message'),
    exited.then(() => {
      throw new Error(`the gateway exited before listening:\n${stderr}`)
    }),
  ])) as [{ type: string; address: string }]
  t.equal(message.type, 'listening')
  return { child, url: message.address, exited, stderr: () => stderr }
}

t.test(
  '--workers 2: two processes answer on one port, a dead one is replaced, SIGTERM stops all',
  async (t) => {
    const gw = await startGateway(t, ['--workers', '2'])
    const pid = gw.child.pid!
    t.equal(children(pid).length, 2, 'two workers under the primary')
    for (let i = 0; i < 4; i++) {
      const res = await request(`${gw.url}/healthz`)
      t.equal(res.statusCode, 200)
      await res.body.dump()
    }
    const [first] = children(pid)
    process.kill(first!, 'SIGKILL')
    const deadline = Date.now() + 20_000
    while (Date.now() < deadline && !(children(pid).length === 2 && !children(pid).includes(first!))) {
      await new Promise((r) => setTimeout(r, 100))
    }
    t.equal(children(pid).length, 2, 'the dead worker was replaced')
    gw.child.kill('SIGTERM')
    const [code] = await gw.exited
    t.equal(code, 0, 'the primary exits cleanly once its workers drained')
  },
)

t.test('GATEWAY_WORKERS sets the count when --workers is absent', async (t) => {
  const gw = await startGateway(t, [], { GATEWAY_WORKERS: '2' })
  t.equal(children(gw.child.pid!).length, 2)
  gw.child.kill('SIGTERM')
  t.equal((await gw.exited)[0], 0)
})

t.test('--workers is refused outside start gateway, and must be a whole number', async (t) => {
  for (const args of [
    ['start', 'issuer', '--workers', '2'],
    ['start', 'gateway', '--workers', '0'],
    ['start', 'gateway', '--workers', 'two'],
  ]) {
    const child = spawn(
      process.execPath,
      ['--conditions=keygate-source', '--import', 'tsx', join(ROOT, 'bin/keygate.ts'), ...args],
      {
        cwd: ROOT,
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    )
    let stderr = ''
    child.stderr!.on('data', (d) => (stderr += d))
    const [code] = await once(child, 'exit')
    t.equal(code, 2, `${args.join(' ')}: usage error`)
    t.match(stderr, /--workers/)
  }
})

t.test(
  'a component whose parent goes away (its IPC channel closes) shuts down, workers and all',
  async (t) => {
    for (const args of [[], ['--workers', '2']]) {
      // Its stdout a pipe nobody reads any more, as when a supervisor dies: the last log lines meet EPIPE.
      const gw = await startGateway(t, args, { LOG_LEVEL: 'info' }, 'pipe')
      gw.child.stdout!.destroy()
      const workers = children(gw.child.pid!)
      // What the child sees when its parent dies without stopping it (SIGKILL, a crash): the channel closes.
      gw.child.disconnect()
      const [code] = await gw.exited
      t.equal(code, 0, `${args.join(' ') || 'one process'}: exited cleanly`)
      for (const pid of workers) {
        t.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `worker ${pid} is gone too`)
      }
      const refused = await request(`${gw.url}/healthz`).catch((err: Error) => err)
      t.type(refused, Error, 'nothing listens on the port any more')
    }
  },
)
