/**
 * A TCP proxy in front of any server, to make it fail the ways neighbours fail: down (connections refused),
 * hanging (connections accepted, never answered), resetting (accepted, then cut). Switching back to `pass`
 * brings it back on the same port. It counts the connections it accepted.
 */
import { createServer, connect, type Server, type Socket } from 'node:net'

export type FaultMode = 'pass' | 'refuse' | 'hang' | 'reset'

export interface FaultProxy {
  /** `http://127.0.0.1:<port>`: what clients are given instead of the target. */
  url: string
  readonly mode: FaultMode
  /** Connections accepted so far (a refused one never is). */
  readonly connections: number
  /** Changes how new connections are treated; `refuse` stops listening, the others listen again. */
  set(mode: FaultMode): Promise<void>
  close(): Promise<void>
}

/**
 * Starts a proxy to `target` (`http://host:port`) on a free port of 127.0.0.1.
 * @example
 * const proxy = await startFaultProxy(upstream.url)
 * await proxy.set('hang') // requests through proxy.url now wait forever
 */
export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const { hostname, port } = new URL(target)
  const open = new Set<Socket>()
  let mode: FaultMode = 'pass'
  let connections = 0
  const track = (socket: Socket) => {
    open.add(socket)
    socket.on('close', () => open.delete(socket))
    socket.on('error', () => socket.destroy())
  }
  const server: Server = createServer((client) => {
    connections++
    track(client)
    if (mode === 'hang') return
    if (mode === 'reset') {
      client.resetAndDestroy()
      return
    }
    const upstream = connect({ host: hostname, port: Number(port) })
    track(upstream)
    client.pipe(upstream).pipe(client)
    upstream.on('close', () => client.destroy())
    client.on('close', () => upstream.destroy())
  })
  const listen = (p: number) => new Promise<void>((resolve) => server.listen(p, '127.0.0.1', resolve))
  const stop = () => new Promise<void>((resolve) => server.close(() => resolve()))
  await listen(0)
  const ownPort = (server.address() as { port: number }).port
  return {
    url: `http://127.0.0.1:${ownPort}`,
    get mode() {
      return mode
    },
    get connections() {
      return connections
    },
    async set(next) {
      if (next === mode) return
      // Connections of the previous mode end with it: a hanging one does not resume, a piped one is cut.
      for (const socket of open) socket.destroy()
      if (next === 'refuse') await stop()
      else if (mode === 'refuse') await listen(ownPort)
      mode = next
    },
    async close() {
      for (const socket of open) socket.destroy()
      if (mode !== 'refuse') await stop()
    },
  }
}
