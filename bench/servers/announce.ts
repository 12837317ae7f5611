/**
 * How a benchmarked server tells the harness where it listens: the same IPC message keygate's own entry
 * points send (`{ type: 'listening', address }`), so the harness waits on every stack the same way; like
 * them, it exits when the harness goes away.
 */
export function announceListening(address: string): void {
  if (!process.send) return console.log(`listening on ${address}`)
  process.send({ type: 'listening', address })
  // A harness killed outright leaves no server behind: its channel closing ends us.
  process.once('disconnect', () => process.exit(0))
  process.channel?.unref()
}

/** Port to listen on: `PORT` from the environment, else 0 (any free port). */
export function portSetting(): number {
  return Number(process.env.PORT ?? 0)
}
