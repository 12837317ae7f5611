import t from 'tap'
import { ReachabilityLog } from '../../../lib/auth/reachability-log.js'
import { captureLogs } from '../../helpers/logs.js'

const LEVELS: Record<number, string> = { 20: 'debug', 30: 'info', 40: 'warn' }

function watched() {
  const logs = captureLogs()
  const log = new ReachabilityLog(logs.logger, "the issuer's JWKS", { issuer: 'http://issuer' })
  const said = () =>
    logs.lines.map((l) => {
      const line = JSON.parse(l) as { level: number; msg: string; issuer: string }
      return `${LEVELS[line.level]}: ${line.msg}`
    })
  return { log, said, logs }
}

t.test('a neighbour not up yet is said once, at info; the retries only at debug', async (t) => {
  const { log, said } = watched()
  log.failed('connect ECONNREFUSED', 'JWKS fetch failed')
  log.failed('connect ECONNREFUSED', 'JWKS fetch failed')
  log.failed('connect ECONNREFUSED', 'JWKS fetch failed')
  log.reached()
  log.reached()
  t.same(said(), [
    "info: waiting for the issuer's JWKS (retrying until it answers)",
    'debug: JWKS fetch failed',
    'debug: JWKS fetch failed',
    "info: the issuer's JWKS reached",
  ])
})

t.test('reached at once: nothing said', async (t) => {
  const { log, said } = watched()
  log.reached()
  t.same(said(), [])
})

t.test('losing a neighbour that had answered is a warning, and its return is said', async (t) => {
  const { log, said, logs } = watched()
  log.reached()
  log.failed('socket hang up', 'JWKS fetch failed')
  log.failed('socket hang up', 'JWKS fetch failed')
  log.reached()
  t.same(said(), ['warn: JWKS fetch failed', 'warn: JWKS fetch failed', "info: the issuer's JWKS reached"])
  t.match(JSON.parse(logs.lines[0]!), { issuer: 'http://issuer', reason: 'socket hang up' })
})
