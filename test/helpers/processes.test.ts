/**
 * The process helper itself: a component counts as started only once it has said over IPC that it listens,
 * so another process answering on a port it was given is never taken for it; a start that meets a taken
 * port is tried again on new ports.
 */
import { once } from 'node:events'
import { createServer } from 'node:http'
import t from 'tap'
import { COMPONENTS } from '../../lib/config.js'
import type * as Processes from './processes.js'
import { freePort } from './system.js'

t.test('an ops port taken by another process that answers /readyz is not taken for the issuer', async (t) => {
  const impostor = createServer((_req, res) => res.end('ok')).listen(0, '127.0.0.1')
  await once(impostor, 'listening')
  t.teardown(() => impostor.close())
  const { port: taken } = impostor.address() as { port: number }
  // freePort is asked for each component's port, then its ops port, the issuer first: hand out the
  // impostor's port as the issuer's ops port at every start.
  let calls = 0
  const { startProcesses } = await t.mockImport<typeof Processes>('./processes.js', {
    './system.js': {
      freePort: () => (calls++ % (2 * COMPONENTS.length) === 1 ? Promise.resolve(taken) : freePort()),
    },
  })
  const stderr: string[] = []
  const write = process.stderr.write.bind(process.stderr)
  process.stderr.write = ((chunk: string) => stderr.push(String(chunk)) > 0) as typeof process.stderr.write
  t.teardown(() => (process.stderr.write = write))
  await t.rejects(
    startProcesses({ components: ['issuer'] }),
    /issuer exited while starting:[\s\S]*EADDRINUSE/,
  )
  t.equal(
    stderr.filter((s) => s.startsWith('issuer exited unasked')).length,
    3,
    'started three times, each time meeting the taken port',
  )
})
