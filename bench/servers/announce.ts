/**
 * How a benchmarked server tells the harness where it listens: the same IPC message keygate's own entry
 * points send (`{ type: 'listening', address }`), so the harness waits on every stack the same way.
 */
export function announceListening(address: string): void {
  if (process.send) process.send({ type: 'listening', address })
  else console.log(`listening on ${address}`)
}

/** Port to listen on: `PORT` from the environment, else 0 (any free port). */
export function portSetting(): number {
  return Number(process.env.PORT ?? 0)
}
