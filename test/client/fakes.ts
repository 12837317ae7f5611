/**
 * A browser and a gateway in miniature, for testing the client in Node: a manual clock, Web Locks and
 * BroadcastChannel shared by the tabs of one fake browser, a cookie jar, and a fake gateway whose `/auth`
 * routes rotate refresh tokens the way the issuer does (a rotated token presented again revokes the session)
 * and whose `/api` routes check bearer tokens.
 */
import { randomUUID } from 'node:crypto'
import { KeygateClient, type KeygateClientOptions } from '../../client/index.js'
import type { ClientRuntime, LockRequester, TabChannelPort } from '../../client/runtime.js'

export const GATEWAY = 'https://gateway.test'
/** The one e-mail code the fake gateway accepts. */
export const FAKE_EMAIL_CODE = '123456'

/** Lets pending promise chains and "network" steps run. */
export async function settle(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setImmediate(resolve))
}

/** Time that moves only when told to. */
export class FakeClock {
  #now = 1_800_000_000_000
  #timers = new Map<number, { at: number; callback: () => void }>()
  #nextId = 1

  now = () => this.#now
  setTimeout = (callback: () => void, ms: number): unknown => {
    const id = this.#nextId++
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), callback })
    return id
  }
  clearTimeout = (handle: unknown): void => {
    this.#timers.delete(handle as number)
  }

  get pendingTimers(): number {
    return this.#timers.size
  }

  /** Moves time forward, running every timer that falls due, in order, letting promises settle between. */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms
    for (;;) {
      await settle()
      let due: [number, { at: number; callback: () => void }] | undefined
      for (const entry of this.#timers)
        if (entry[1].at <= target && (!due || entry[1].at < due[1].at)) due = entry
      if (!due) break
      this.#timers.delete(due[0])
      this.#now = due[1].at
      due[1].callback()
    }
    this.#now = target
    await settle()
  }
}

/** `navigator.locks` shared by the tabs of one browser: a FIFO queue per name. */
export class FakeLocks implements LockRequester {
  #tails = new Map<string, Promise<unknown>>()
  held = 0
  maxHeld = 0

  request<T>(name: string, callback: () => Promise<T>): Promise<T> {
    const run = async () => {
      this.held++
      this.maxHeld = Math.max(this.maxHeld, this.held)
      try {
        return await callback()
      } finally {
        this.held--
      }
    }
    const result = (this.#tails.get(name) ?? Promise.resolve()).then(run, run)
    this.#tails.set(
      name,
      result.catch(() => undefined),
    )
    return result
  }
}

/** BroadcastChannel between the tabs of one browser: delivered later, as a copy, never to the sender. */
export class FakeChannels {
  #ports = new Set<{ name: string; listeners: Array<(event: { data: unknown }) => void>; closed: boolean }>()
  posted: unknown[] = []

  open = (name: string): TabChannelPort => {
    const port = { name, listeners: [] as Array<(event: { data: unknown }) => void>, closed: false }
    this.#ports.add(port)
    return {
      postMessage: (message) => {
        this.posted.push(message)
        const copy = JSON.stringify(message)
        for (const other of this.#ports) {
          if (other === port || other.name !== name) continue
          setImmediate(() => {
            if (!other.closed) for (const listener of other.listeners) listener({ data: JSON.parse(copy) })
          })
        }
      },
      addEventListener: (_type, listener) => port.listeners.push(listener),
      close: () => {
        port.closed = true
        this.#ports.delete(port)
      },
    }
  }
}

interface Session {
  id: string
  email: string
  csrf: string
  refresh: string
  /** Rotated refresh tokens → when they were rotated. */
  rotated: Map<string, number>
  revoked: boolean
}

/** One request as the fake gateway saw it. */
export interface SeenRequest {
  method: string
  path: string
  authorization: string | null
  csrf: string | null
  credentials: RequestCredentials | undefined
}

/** The gateway and issuer, as far as the client can tell. */
export class FakeGateway {
  readonly users = new Map<string, string>()
  readonly sessions = new Map<string, Session>()
  readonly accessTokens = new Map<string, { sessionId: string; expiresAt: number }>()
  readonly requests: SeenRequest[] = []
  /** Refreshes by outcome. */
  readonly refreshes = { rotated: 0, grace: 0, reused: 0, refused: 0 }
  refreshesInFlight = 0
  maxRefreshesInFlight = 0
  /** Answer every request with this status instead (a gateway restarting), or throw (offline). */
  failure: number | 'offline' | null = null
  /** The refresh reuse grace window, ms (the issuer's REFRESH_REUSE_GRACE). */
  graceMs = 0
  /** What `GET /auth/methods` says is on. */
  methods: string[] = ['password', 'email-code', 'external']
  /** E-mails codes were requested for (every code is FAKE_EMAIL_CODE). */
  readonly codesRequested: string[] = []
  /** External tokens that log in, and whose they are. */
  readonly externalTokens = new Map([['ext-token-ada', 'ada@example.com']])

  constructor(
    readonly clock: FakeClock,
    /** Access-token lifetime, seconds. */
    readonly ttlS = 60,
  ) {
    this.users.set('ada@example.com', 'correct horse battery')
  }

  /** A `fetch` for one browser (its cookie jar). */
  fetchFor(jar: CookieJar): ClientRuntime['fetch'] {
    return (input, init = {}) => this.#handle(jar, input, init)
  }

  revokeAll(): void {
    for (const session of this.sessions.values()) session.revoked = true
  }

  async #handle(jar: CookieJar, input: string, init: RequestInit): Promise<Response> {
    const url = new URL(input)
    const headers = new Headers(init.headers)
    const method = init.method ?? 'GET'
    this.requests.push({
      method,
      path: url.pathname,
      authorization: headers.get('authorization'),
      csrf: headers.get('x-csrf-token'),
      credentials: init.credentials,
    })
    if (url.origin !== GATEWAY) throw new TypeError(`fetch to an unexpected origin: ${url.origin}`)
    // The browser attaches the cookies as the request leaves.
    const presented = init.credentials === 'include' ? jar.refresh : null
    await settle(3)
    if (this.failure === 'offline') throw new TypeError('Failed to fetch')
    if (this.failure !== null) return problem(this.failure, 'KG_UPSTREAM_UNAVAILABLE')
    const route = `${method} ${url.pathname}`
    if (route === 'POST /auth/register') return json(202, { email: 'new@example.com' })
    if (route === 'POST /auth/login') {
      const { email, password } = JSON.parse(String(init.body)) as { email: string; password: string }
      if (this.users.get(email) !== password) return problem(401, 'KG_INVALID_CREDENTIALS')
      const session: Session = {
        id: randomUUID(),
        email,
        csrf: randomUUID(),
        refresh: randomUUID(),
        rotated: new Map(),
        revoked: false,
      }
      this.sessions.set(session.id, session)
      return this.#grant(jar, session)
    }
    if (route === 'GET /auth/methods') {
      return json(200, {
        methods: this.methods,
        registration: 'closed',
        external_issuers: ['https://idp.test'],
      })
    }
    if (route === 'POST /auth/email-code') {
      const { email } = JSON.parse(String(init.body)) as { email: string }
      this.codesRequested.push(email)
      return json(202, { email: email.trim().toLowerCase(), expires_in: 600 })
    }
    if (route === 'POST /auth/email-code/verify' || route === 'POST /auth/external') {
      const body = JSON.parse(String(init.body)) as { email?: string; code?: string; token?: string }
      const email = body.token === undefined ? body.email : this.externalTokens.get(body.token)
      const valid = body.token === undefined ? body.code === FAKE_EMAIL_CODE : email !== undefined
      if (!valid || !email)
        return problem(401, body.token === undefined ? 'KG_EMAIL_CODE_INVALID' : 'KG_TOKEN_EXPIRED')
      const session: Session = {
        id: randomUUID(),
        email,
        csrf: randomUUID(),
        refresh: randomUUID(),
        rotated: new Map(),
        revoked: false,
      }
      this.sessions.set(session.id, session)
      return this.#grant(jar, session)
    }
    if (route === 'POST /auth/refresh') return this.#refresh(jar, presented, headers.get('x-csrf-token'))
    if (route === 'POST /auth/logout') {
      const session = this.#sessionOf(presented)
      if (session && session.csrf !== headers.get('x-csrf-token')) return problem(403, 'KG_CSRF_FAILED')
      if (session) session.revoked = true
      jar.clear()
      return new Response(null, { status: 204 })
    }
    if (route === 'POST /auth/logout-all') {
      const caller = this.#caller(headers)
      if (typeof caller === 'number') return invalidToken()
      for (const s of this.sessions.values()) if (s.email === caller.email) s.revoked = true
      if (init.credentials === 'include') jar.clear()
      return new Response(null, { status: 204 })
    }
    if (url.pathname.startsWith('/api/')) {
      const caller = this.#caller(headers)
      if (caller === 0) return problem(401, 'KG_TOKEN_MISSING', 'Bearer realm="keygate"')
      if (typeof caller === 'number') return invalidToken()
      return json(200, { path: url.pathname, session: caller.id, body: init.body ?? null })
    }
    return problem(404, 'KG_ROUTE_NOT_FOUND')
  }

  async #refresh(jar: CookieJar, presented: string | null, csrf: string | null): Promise<Response> {
    this.refreshesInFlight++
    this.maxRefreshesInFlight = Math.max(this.maxRefreshesInFlight, this.refreshesInFlight)
    try {
      await settle(3)
      const session = this.#sessionOf(presented)
      if (!session || session.revoked) {
        this.refreshes.refused++
        return problem(401, 'KG_REFRESH_INVALID')
      }
      if (session.csrf !== csrf) return problem(403, 'KG_CSRF_FAILED')
      if (presented !== session.refresh) {
        const rotatedAt = session.rotated.get(presented!)!
        if (this.clock.now() - rotatedAt > this.graceMs) {
          this.refreshes.reused++
          session.revoked = true
          return problem(401, 'KG_REFRESH_REUSED')
        }
        this.refreshes.grace++
        return this.#grant(jar, session)
      }
      this.refreshes.rotated++
      session.rotated.set(session.refresh, this.clock.now())
      session.refresh = randomUUID()
      return this.#grant(jar, session)
    } finally {
      this.refreshesInFlight--
    }
  }

  #grant(jar: CookieJar, session: Session): Response {
    const token = `at-${randomUUID()}`
    this.accessTokens.set(token, { sessionId: session.id, expiresAt: this.clock.now() + this.ttlS * 1000 })
    jar.refresh = session.refresh
    jar.csrf = session.csrf
    return json(200, {
      access_token: token,
      token_type: 'Bearer',
      expires_in: this.ttlS,
      csrf_token: session.csrf,
    })
  }

  #sessionOf(refresh: string | null): Session | undefined {
    if (refresh === null) return undefined
    for (const s of this.sessions.values()) if (s.refresh === refresh || s.rotated.has(refresh)) return s
    return undefined
  }

  /** The caller's session, or 0 without a token, 401 for a bad one. */
  #caller(headers: Headers): Session | 0 | 401 {
    const bearer = /^Bearer (.+)$/.exec(headers.get('authorization') ?? '')?.[1]
    if (!bearer) return 0
    const token = this.accessTokens.get(bearer)
    const session = token && this.sessions.get(token.sessionId)
    if (!token || !session || session.revoked || token.expiresAt <= this.clock.now()) return 401
    return session
  }
}

/** The browser's cookies for the gateway: `kg_refresh` (HttpOnly) and `kg_csrf` (readable). */
export class CookieJar {
  refresh: string | null = null
  csrf: string | null = null
  clear(): void {
    this.refresh = null
    this.csrf = null
  }
  /** What `document.cookie` shows: never the HttpOnly refresh cookie. */
  readable(): string {
    return this.csrf === null ? 'theme=dark' : `theme=dark; kg_csrf=${this.csrf}`
  }
}

/** A browser: tabs share its cookie jar, its locks and its channels. */
export class FakeBrowser {
  readonly jar = new CookieJar()
  readonly locks = new FakeLocks()
  readonly channels = new FakeChannels()
  readonly tabs: KeygateClient[] = []

  constructor(
    readonly gateway: FakeGateway,
    readonly options: { webLocks?: boolean; broadcastChannel?: boolean } = {},
  ) {}

  /** A new tab with a client on the gateway. */
  tab(options: Omit<KeygateClientOptions, 'runtime'> = {}): KeygateClient {
    const clock = this.gateway.clock
    const client = new KeygateClient({
      gatewayUrl: GATEWAY,
      ...options,
      runtime: {
        fetch: this.gateway.fetchFor(this.jar),
        now: clock.now,
        setTimeout: clock.setTimeout,
        clearTimeout: clock.clearTimeout,
        random: () => 0.5,
        locks: this.options.webLocks === false ? undefined : this.locks,
        openChannel: this.options.broadcastChannel === false ? undefined : this.channels.open,
        cookies: () => this.jar.readable(),
        pageUrl: () => `${GATEWAY}/`,
        onVisible: () => () => undefined,
      },
    })
    this.tabs.push(client)
    return client
  }

  close(): void {
    for (const tab of this.tabs) tab.close()
  }
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } })
}

function problem(status: number, code: string, challenge?: string): Response {
  const response = json(status, { error: 'error', code, message: `${code} message` })
  if (challenge) response.headers.set('www-authenticate', challenge)
  return response
}

function invalidToken(): Response {
  return problem(401, 'KG_TOKEN_EXPIRED', 'Bearer realm="keygate", error="invalid_token"')
}
