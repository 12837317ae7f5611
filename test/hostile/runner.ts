/**
 * Runs hostile cases against entry points over raw HTTP and judges each answer against the case's
 * expectation: the status, the error and code of the JSON body, the RFC 6750 challenge, never a 5xx, never
 * silence, never a hang.
 */
import type { EntryPoint } from '../helpers/hostile-world.js'
import { type RawHeader, type RawResponse, rawRequest } from '../helpers/raw-http.js'
import type { EntryName, HostileCase } from './corpus/index.js'

/** A request that takes longer than this is a hang (the JWKS timeout is 5 s; nothing here should wait). */
export const HANG_MS = 10_000
/** Requests in flight at once. */
const CONCURRENCY = 8

/** A quoted RFC 6750 attribute value: printable ASCII without `"` or `\`. */
const QUOTED = '"[\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]*"'
const challengeFor = (error: string) =>
  new RegExp(`^Bearer realm=${QUOTED}, error="${error}", error_description=${QUOTED}$`)
const BARE_CHALLENGE = /^Bearer realm="[^"]*"$/

export interface CaseOutcome {
  case: HostileCase
  entry: EntryName
  response: RawResponse
  /** Why the answer is wrong; undefined when it is right. */
  problem: string | undefined
}

/** The headers a case is sent with: its own, or its token as a bearer credential (or an assertion). */
export function headersOf(c: HostileCase): readonly RawHeader[] {
  if (c.headers) return c.headers
  if (c.token === undefined) return []
  return c.family === 'assertions'
    ? [['x-keygate-assertion', c.token]]
    : [['authorization', `Bearer ${c.token}`]]
}

/** Why `r` is the wrong answer to `c`, or undefined. */
export function judge(c: HostileCase, r: RawResponse): string | undefined {
  if (r.timedOut) return `no answer within ${HANG_MS} ms`
  if (r.status === 0) return 'the connection closed without an answer'
  if (r.status >= 500) return `answered ${r.status} ${r.body.slice(0, 200)}`
  if (r.elapsedMs > HANG_MS) return `took ${Math.round(r.elapsedMs)} ms`
  const expect = c.expect
  const got = `${r.status} ${r.json?.code ?? ''} ${r.headers['www-authenticate'] ?? '(no challenge)'}`
  switch (expect.kind) {
    case 'accepted':
      return r.status >= 200 && r.status < 300 ? undefined : `expected 2xx, got ${got}`
    case 'bad_http':
      return r.status === 400 && r.json?.code === 'KG_MALFORMED_REQUEST'
        ? undefined
        : `expected the HTTP parser's 400 KG_MALFORMED_REQUEST, got ${got}`
    case 'missing':
      return r.status === 401 &&
        r.json?.code === 'KG_TOKEN_MISSING' &&
        BARE_CHALLENGE.test(r.headers['www-authenticate'] ?? '')
        ? undefined
        : `expected 401 KG_TOKEN_MISSING with a bare challenge, got ${got}`
    case 'too_large':
      if (r.status === 431) {
        return r.json?.code === 'KG_HEADERS_TOO_LARGE'
          ? undefined
          : `expected 431 KG_HEADERS_TOO_LARGE, got ${got}`
      }
      return r.status === 401 &&
        r.json?.code === 'KG_TOKEN_TOO_LARGE' &&
        challengeFor('invalid_token').test(r.headers['www-authenticate'] ?? '')
        ? undefined
        : `expected 431 or 401 KG_TOKEN_TOO_LARGE, got ${got}`
    case 'invalid_token':
    case 'invalid_request': {
      const status = expect.kind === 'invalid_token' ? 401 : 400
      const codes = expect.code === undefined ? undefined : [expect.code].flat()
      if (r.status !== status || r.json?.error !== expect.kind)
        return `expected ${status} ${expect.kind}, got ${got}`
      if (codes && !codes.includes(r.json.code)) return `expected ${codes.join(' or ')}, got ${got}`
      if (!challengeFor(expect.kind).test(r.headers['www-authenticate'] ?? '')) return `bad challenge: ${got}`
      return undefined
    }
  }
}

/**
 * Sends every case to every entry point it applies to (a few requests at a time) and judges the answers.
 * @example
 * const outcomes = await runCases(cases, world.entryPoints)
 * t.same(outcomes.filter((o) => o.problem), [])
 */
export async function runCases(
  cases: readonly HostileCase[],
  entryPoints: readonly EntryPoint[],
): Promise<CaseOutcome[]> {
  const work = cases.flatMap((c) =>
    entryPoints.filter((e) => c.only === undefined || c.only.includes(e.name)).map((e) => ({ c, e })),
  )
  const outcomes: CaseOutcome[] = []
  let next = 0
  const worker = async () => {
    while (next < work.length) {
      const { c, e } = work[next++]!
      const response = await rawRequest(e.url, {
        target: `${e.path}${c.query ?? ''}`,
        headers: headersOf(c),
        timeoutMs: HANG_MS + 1000,
      })
      outcomes.push({ case: c, entry: e.name, response, problem: judge(c, response) })
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
  return outcomes
}

/** The wrong answers, one line per case and problem (naming the entry points it happened at). */
export function problems(outcomes: readonly CaseOutcome[]): string[] {
  const byProblem = new Map<string, EntryName[]>()
  for (const o of outcomes) {
    if (o.problem === undefined) continue
    const key = `${o.case.name}: ${o.problem}`
    byProblem.set(key, [...(byProblem.get(key) ?? []), o.entry])
  }
  return [...byProblem].map(([problem, at]) => `${problem} (at ${at.sort().join(', ')})`)
}
