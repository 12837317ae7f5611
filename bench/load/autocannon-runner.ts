/**
 * autocannon in its own process (pinned like wrk would be), for machines without wrk and for runs of an
 * exact number of requests. Reads its settings as JSON from argv[2]; prints the result as one JSON line.
 */
import { readFileSync } from 'node:fs'
import autocannon from 'autocannon'
import type { AutocannonSettings } from './index.js'

const settings = JSON.parse(process.argv[2]!) as AutocannonSettings

/** Tokens by phase (one list without phases), each already `Bearer …`. */
function tokenPhases(): string[][] {
  if (!settings.tokenFile) return [[]]
  const lines = readFileSync(settings.tokenFile, 'utf8').split('\n').filter(Boolean)
  if (settings.phaseS > 0) {
    const phases: string[][] = []
    for (const line of lines) {
      const space = line.indexOf(' ')
      ;(phases[Number(line.slice(0, space))] ??= []).push(`Bearer ${line.slice(space + 1)}`)
    }
    return phases
  }
  const end = settings.span > 0 ? settings.offset + settings.span : lines.length
  return [lines.slice(settings.offset, end).map((t) => `Bearer ${t}`)]
}

const phases = tokenPhases()
const started = Date.now()
let next = 0
const result = await autocannon({
  url: settings.url,
  connections: settings.connections,
  ...(settings.amount ? { amount: settings.amount } : { duration: settings.durationS }),
  ...(settings.rate ? { overallRate: settings.rate } : {}),
  requests: [
    {
      setupRequest(request: { headers?: Record<string, string> }) {
        const phase = Math.min(
          phases.length - 1,
          Math.floor((Date.now() - started) / 1000 / (settings.phaseS || Infinity)),
        )
        const list = phases[phase]!
        if (list.length > 0) {
          request.headers = { ...request.headers, authorization: list[next++ % list.length]! }
        }
        return request
      },
    },
  ],
} as autocannon.Options)
console.log(
  JSON.stringify({
    requests: result.requests.total,
    durationS: result.duration,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  }),
)
