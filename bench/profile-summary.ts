/**
 * Where a V8 CPU profile (`--cpu-prof`) says the time went: self time per function and per area (keygate's
 * own code by file, each package, Node's internals, GC, idle), as markdown.
 *
 *   npx tsx --conditions=keygate-source bench/profile-summary.ts <dir or .cpuprofile>
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'

/** Functions listed, by self time. */
const TOP_FUNCTIONS = 25

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}

/**
 * Samples count from the first one inside a request handler of the profiled component (the gateway's
 * proxied route, the issuer's auth routes): start-up is not the hot path.
 */
const HOT_PATH_MARKER = /(gateway\/proxy-route|services\/issuer\/routes\/auth)\.ts$/

interface CpuProfile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

/** The area a function belongs to: a package, a keygate file, Node itself, or V8's own entries. */
function area(url: string, name: string): string {
  if (url === '')
    return name === '(garbage collector)' || name === '(idle)' || name === '(program)' ? name : '(native)'
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg) return pkg[1]!
  if (url.startsWith('node:')) return 'node internals'
  const own = /\/(bin|lib|gateway|services|bench)\/(.+)$/.exec(url)
  return own ? `keygate ${own[1]}/${own[2]}` : url
}

function pct(part: number, total: number): string {
  return `${((part / total) * 100).toFixed(1)}%`
}

/** A markdown summary of one profile. */
export function summariseProfile(file: string): string {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const stackOf = (id: number) => {
    const stack: ProfileNode[] = []
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) stack.push(byId.get(at)!)
    return stack
  }
  const first = profile.samples.findIndex((id) =>
    stackOf(id).some((n) => HOT_PATH_MARKER.test(n.callFrame.url)),
  )
  // A thread that never ran the proxy (the tsx loader's worker) has nothing to say about the hot path.
  if (first === -1) return ''
  const self = new Map<number, number>()
  /** Time with each area anywhere on the stack (inclusive). */
  const inclusive = new Map<string, number>()
  profile.samples.forEach((id, i) => {
    if (i < first) return
    const t = profile.timeDeltas[i] ?? 0
    self.set(id, (self.get(id) ?? 0) + t)
    const stack = stackOf(id)
    if (stack[0]?.callFrame.functionName === '(idle)') return
    for (const where of new Set(stack.map((n) => area(n.callFrame.url, n.callFrame.functionName)))) {
      inclusive.set(where, (inclusive.get(where) ?? 0) + t)
    }
  })
  const total = [...self.values()].reduce((a, b) => a + b, 0)
  const idle = [...self]
    .filter(([id]) => byId.get(id)?.callFrame.functionName === '(idle)')
    .reduce((a, [, t]) => a + t, 0)
  const busy = total - idle
  const functions = new Map<string, number>()
  const areas = new Map<string, number>()
  for (const [id, t] of self) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame
    if (functionName === '(idle)') continue
    const where = area(url, functionName)
    const key = `${functionName || '(anonymous)'} — ${where}${url ? `:${lineNumber + 1}` : ''}`
    functions.set(key, (functions.get(key) ?? 0) + t)
    areas.set(where, (areas.get(where) ?? 0) + t)
  }
  const rows = (m: Map<string, number>, n: number) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, t]) => `| ${k} | ${pct(t, busy)} |`)
  return [
    `Profile ${file.split('/').slice(-2).join('/')}: ${(busy / 1e6).toFixed(1)} s busy of ${(total / 1e6).toFixed(1)} s ` +
      'sampled from the first proxied request on.',
    '',
    '| area | self time (of busy) |',
    '|---|---:|',
    ...rows(areas, 20),
    '',
    '| area anywhere on the stack | inclusive time (of busy) |',
    '|---|---:|',
    ...rows(inclusive, 20),
    '',
    '| function — where | self time (of busy) |',
    '|---|---:|',
    ...rows(functions, TOP_FUNCTIONS),
  ].join('\n')
}

/** Summaries of every profile under `path` (a directory, searched recursively) or of the one it names. */
export function profileSummary(path: string): string {
  const files = statSync(path).isDirectory()
    ? readdirSync(path, { recursive: true, encoding: 'utf8' })
        .filter((f) => f.endsWith('.cpuprofile'))
        .sort()
        .map((f) => join(path, f))
    : [path]
  if (files.length === 0) return `No profile in ${path}.`
  return files
    .map(summariseProfile)
    .filter((s) => s !== '')
    .join('\n\n')
}

if (process.argv[1] === import.meta.filename) console.log(profileSummary(process.argv[2] ?? '.'))
