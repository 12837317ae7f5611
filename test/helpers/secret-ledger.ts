/**
 * Every secret a test handled (access and refresh tokens, passwords, CSRF tokens, forged tokens, links), kept
 * so the test can prove at the end that none of them reached a log. A JWS is looked for by its signature
 * segment, which is unique to it, so a log line that kept only part of a token is caught too.
 *
 * Searching is linear in the log size whatever the number of secrets: base64url secrets are indexed by
 * length and looked up in every base64url run of a line; only the few secrets with other characters
 * (passwords) are searched for as substrings.
 */

/** Shorter values could appear in a log by coincidence; they are not evidence of a leak. */
const MIN_SECRET_CHARS = 12
const BASE64URL_RUN = /[A-Za-z0-9_-]{12,}/g
const BASE64URL_ONLY = /^[A-Za-z0-9_-]+$/

export type SecretKind =
  'access token' | 'refresh token' | 'password' | 'csrf token' | 'hostile token' | 'assertion' | 'link'

export interface Leak {
  kind: SecretKind
  /** The secret, shortened for the report. */
  secret: string
  /** Where it was found (a process or logger name) and the offending line, shortened. */
  where: string
  line: string
}

export class SecretLedger {
  /** base64url secrets by length. */
  readonly #byLength = new Map<number, Map<string, SecretKind>>()
  /** Secrets with other characters (passwords with spaces, …). */
  readonly #phrases = new Map<string, SecretKind>()
  #count = 0

  /** Remembers a secret (ignored when too short to be meaningful); a JWS by its signature. */
  add(kind: SecretKind, secret: string | undefined): void {
    if (secret === undefined) return
    const parts = secret.split('.')
    const fingerprint = parts.length >= 3 ? parts[2]! : secret
    if (fingerprint.length < MIN_SECRET_CHARS) return
    this.#count++
    if (!BASE64URL_ONLY.test(fingerprint)) {
      this.#phrases.set(fingerprint, kind)
      return
    }
    let sameLength = this.#byLength.get(fingerprint.length)
    if (!sameLength) this.#byLength.set(fingerprint.length, (sameLength = new Map()))
    sameLength.set(fingerprint, kind)
  }

  /** Remembers the tokens an issuer answer hands out: in its JSON body and in its cookies. */
  addFromAnswer(answer: { json?: Record<string, any> | undefined; headers?: Record<string, unknown> }): void {
    this.add('access token', answer.json?.access_token)
    this.add('csrf token', answer.json?.csrf_token)
    const setCookie = answer.headers?.['set-cookie']
    const cookies = Array.isArray(setCookie) ? setCookie : setCookie ? [String(setCookie)] : []
    for (const cookie of cookies) {
      const [pair] = String(cookie).split(';')
      const value = pair!.slice(pair!.indexOf('=') + 1)
      this.add(pair!.startsWith('kg_csrf=') ? 'csrf token' : 'refresh token', value)
    }
  }

  /** How many secrets are remembered. */
  get size(): number {
    return this.#count
  }

  /** Every line of `text` (from `where`) that contains a remembered secret. */
  leaksIn(where: string, text: string | readonly string[]): Leak[] {
    const lines = typeof text === 'string' ? text.split('\n') : text
    const leaks: Leak[] = []
    const report = (kind: SecretKind, secret: string, line: string) =>
      leaks.push({ kind, secret: `${secret.slice(0, 16)}…`, where, line: line.slice(0, 300) })
    for (const line of lines) {
      if (line.length < MIN_SECRET_CHARS) continue
      for (const [phrase, kind] of this.#phrases) if (line.includes(phrase)) report(kind, phrase, line)
      for (const [run] of line.matchAll(BASE64URL_RUN)) {
        for (const [length, secrets] of this.#byLength) {
          for (let at = 0; at + length <= run.length; at++) {
            const candidate = run.slice(at, at + length)
            const kind = secrets.get(candidate)
            if (kind) report(kind, candidate, line)
          }
        }
      }
    }
    return leaks
  }
}
