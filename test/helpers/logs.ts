/**
 * Shared test helpers: log capture (to prove no secret is ever logged) and small utilities.
 */
import { Writable } from 'node:stream'
import { createLogger } from '../../lib/server.js'

/** A logger whose JSON lines are kept in memory, plus a search over everything it wrote. */
export function captureLogs(name = 'test') {
  const lines: string[] = []
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...chunk.toString().split('\n').filter(Boolean))
      cb()
    },
  })
  const logger = createLogger({ name, level: 'debug', stream })
  return {
    logger,
    lines,
    /** Every captured line containing `needle` (used to assert secrets never appear). */
    find: (needle: string) => lines.filter((l) => l.includes(needle)),
  }
}
