/**
 * A browser user for load, fault and soak tests: registers, logs in, refreshes and calls the API through the
 * gateway with a cookie jar, keeps its current access token and CSRF token, and hands every secret it sees to
 * a SecretLedger. Network errors become status 0 instead of exceptions, so a storm can count them.
 */
import { randomUUID } from 'node:crypto'
import type { SecretLedger } from './secret-ledger.js'
import { HttpClient } from './system.js'

export interface Answer {
  /** 0 when the request failed without an HTTP answer. */
  status: number
  code: string | undefined
  json: Record<string, any>
  /** Milliseconds since the epoch when the answer arrived. */
  at: number
}

export class VirtualUser {
  readonly client: HttpClient
  readonly email: string
  readonly password: string
  token: string | undefined
  csrf: string | undefined

  constructor(
    gatewayUrl: string,
    readonly ledger?: SecretLedger,
    name: string = randomUUID(),
  ) {
    this.client = new HttpClient(gatewayUrl)
    this.email = `${name}@example.com`
    this.password = `passphrase of ${name}`
    ledger?.add('password', this.password)
  }

  /** The `kid` of the current access token. */
  get kid(): string | undefined {
    return this.token === undefined ? undefined : kidOf(this.token)
  }

  /** One request through the gateway, as this user (with the access token unless `anonymous`). */
  async call(
    method: string,
    path: string,
    options: { body?: unknown; headers?: Record<string, string>; raw?: string; anonymous?: boolean } = {},
  ): Promise<Answer> {
    try {
      const r = await this.client.call(method, path, {
        ...(options.anonymous || this.token === undefined ? {} : { token: this.token }),
        ...(options.body === undefined ? {} : { body: options.body }),
        ...(options.headers ? { headers: options.headers } : {}),
        ...(options.raw === undefined ? {} : { raw: options.raw }),
      })
      this.ledger?.addFromAnswer({ json: r.json, headers: r.headers as Record<string, unknown> })
      return { status: r.status, code: r.json.code as string | undefined, json: r.json, at: Date.now() }
    } catch {
      return { status: 0, code: undefined, json: {}, at: Date.now() }
    }
  }

  register(): Promise<Answer> {
    return this.call('POST', '/auth/register', {
      body: { email: this.email, password: this.password },
      anonymous: true,
    })
  }

  async login(): Promise<Answer> {
    const r = await this.call('POST', '/auth/login', {
      body: { email: this.email, password: this.password },
      anonymous: true,
    })
    if (r.status === 200) this.#adopt(r)
    return r
  }

  async refresh(): Promise<Answer> {
    const r = await this.call('POST', '/auth/refresh', {
      headers: { 'x-csrf-token': this.csrf ?? '' },
      anonymous: true,
    })
    if (r.status === 200) this.#adopt(r)
    return r
  }

  #adopt(r: Answer): void {
    this.token = r.json.access_token as string
    this.csrf = r.json.csrf_token as string
  }
}

/** The `kid` in a JWS header. */
export function kidOf(token: string): string | undefined {
  try {
    return JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString('utf8')).kid
  } catch {
    return undefined
  }
}
