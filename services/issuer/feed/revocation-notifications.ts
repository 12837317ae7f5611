/**
 * The wake-up from other issuer instances on PostgreSQL: one dedicated connection per instance LISTENs on
 * the channel every event-recording transaction notifies at commit. The notification carries nothing the
 * fan-out trusts (it reads the table); a lost connection is reopened with backoff, and each (re)connection
 * wakes the fan-out once, since notifications sent while it was away are gone.
 */
import type { FastifyBaseLogger } from 'fastify'
import pg from 'pg'
import { REVOCATION_CHANNEL } from '../store/revocations.js'

/** `application_name` of the listening connection (visible in pg_stat_activity). */
export const LISTENER_APPLICATION_NAME = 'keygate-issuer-revocation-listener'
const FIRST_RECONNECT_DELAY_MS = 250
const MAX_RECONNECT_DELAY_MS = 10_000
const CONNECT_TIMEOUT_MS = 5000

export interface RevocationNotificationsOptions {
  /** The PostgreSQL URL (DATABASE_URL). */
  url: string
  log: FastifyBaseLogger
  /** Called on every notification and after every (re)connection. */
  onWake: () => void
}

/** One LISTEN connection, kept open until `stop()`. */
export class RevocationNotifications {
  readonly #o: RevocationNotificationsOptions
  #client: pg.Client | undefined
  #stopped = false
  #delayMs = FIRST_RECONNECT_DELAY_MS
  #retry: NodeJS.Timeout | undefined
  #connected = false

  constructor(options: RevocationNotificationsOptions) {
    this.#o = options
  }

  /** True while the LISTEN connection is up. */
  get connected(): boolean {
    return this.#connected
  }

  /** Opens the connection; a failure is logged and retried in the background (the poll covers the gap). */
  async start(): Promise<void> {
    await this.#connect()
  }

  async stop(): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#retry)
    const client = this.#client
    this.#client = undefined
    this.#connected = false
    await client?.end().catch(() => {})
  }

  async #connect(): Promise<void> {
    if (this.#stopped) return
    const client = new pg.Client({
      connectionString: this.#o.url,
      application_name: LISTENER_APPLICATION_NAME,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      // A silently dead peer (a dropped NAT entry) is noticed by TCP keepalive, not by waiting forever.
      keepAlive: true,
    })
    let lost = false
    const onLost = (err?: Error) => {
      if (lost) return
      lost = true
      this.#connected = false
      if (this.#client === client) this.#client = undefined
      client.end().catch(() => {})
      if (this.#stopped) return
      this.#o.log.warn(
        { reason: err?.message ?? 'connection ended' },
        'revocation LISTEN connection lost; reconnecting',
      )
      this.#scheduleReconnect()
    }
    client.on('notification', () => this.#o.onWake())
    client.on('error', onLost)
    client.on('end', () => onLost())
    try {
      await client.connect()
      await client.query(`LISTEN ${REVOCATION_CHANNEL}`)
    } catch (err) {
      onLost(err as Error)
      return
    }
    if (this.#stopped || lost) {
      await client.end().catch(() => {})
      return
    }
    this.#client = client
    this.#connected = true
    this.#delayMs = FIRST_RECONNECT_DELAY_MS
    // Whatever was notified while we were not listening: read it now rather than at the next poll.
    this.#o.onWake()
  }

  #scheduleReconnect(): void {
    clearTimeout(this.#retry)
    this.#retry = setTimeout(() => void this.#connect(), this.#delayMs)
    this.#retry.unref()
    this.#delayMs = Math.min(this.#delayMs * 2, MAX_RECONNECT_DELAY_MS)
  }
}
