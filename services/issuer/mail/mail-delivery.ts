/**
 * Outgoing mail (e-mail login codes), never on the request's path: `send` queues and returns at once;
 * delivery runs in the background with retries, and each outcome is counted in
 * `keygate_issuer_mail_deliveries_total`. With SMTP_URL, mail goes through that server (nodemailer; STARTTLS
 * whenever the server offers it, `smtps://` for implicit TLS). Without it (the `npm start` default), each
 * message is written as an `.eml` file to the outbox (`${DATA_DIR}/outbox`) and the log says where. Logs name
 * the file or the message id, never the message's text (it carries a login code).
 */
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import type { FastifyBaseLogger } from 'fastify'
import nodemailer from 'nodemailer'
import type { Counter } from 'prom-client'
import { createFileOnce } from '../../../lib/atomic-file.js'

/** How the issuer sends mail (the issuer's SMTP_URL, MAIL_* settings, in milliseconds). */
export interface MailSettings {
  /** `smtp://user:pass@host:587` or `smtps://…`; undefined: write to `outboxDir`. */
  smtpUrl: string | undefined
  /** The From header, e.g. `keygate <no-reply@example.com>`. */
  mailFrom: string
  /** Further attempts after a failed one (MAIL_RETRIES). */
  mailRetries: number
  /** Wait before the first retry; doubles with each further one (MAIL_RETRY_DELAY). */
  mailRetryDelayMs: number
  /** Connection, greeting and socket inactivity timeout of one SMTP attempt (MAIL_TIMEOUT). */
  mailTimeoutMs: number
  /** Where mail goes without SMTP. */
  outboxDir: string
}

export type MailDeliveryOutcome = 'sent' | 'retried' | 'failed'
export const MAIL_DELIVERY_OUTCOMES: readonly MailDeliveryOutcome[] = ['sent', 'retried', 'failed']

/** One plain-text message to one recipient. */
export interface MailMessage {
  to: string
  subject: string
  text: string
  /** What the message is for, for the log (e.g. `email-code`). */
  purpose: string
}

export interface MailDeliveryOptions {
  settings: MailSettings
  log: FastifyBaseLogger
  /** Counts each attempt's outcome. */
  deliveries: Counter<'outcome'>
}

interface Transport {
  deliver(message: MailMessage): Promise<Record<string, unknown>>
  close(): void
}

/** The issuer's one way to send mail. */
export class MailDelivery {
  readonly #o: MailDeliveryOptions
  readonly #transport: Transport
  readonly #pending = new Set<Promise<void>>()
  readonly #waits = new Set<() => void>()
  #closed = false

  constructor(options: MailDeliveryOptions) {
    this.#o = options
    this.#transport = options.settings.smtpUrl
      ? smtpTransport(options.settings)
      : outboxTransport(options.settings)
  }

  /** Where mail goes, for the start-up log: `smtp` or the outbox directory. */
  get destination(): string {
    return this.#o.settings.smtpUrl ? 'smtp' : this.#o.settings.outboxDir
  }

  /** Queues a message; returns at once. Failures are retried, logged and counted, never thrown. */
  send(message: MailMessage): void {
    if (this.#closed) {
      this.#o.log.warn({ purpose: message.purpose }, 'mail not sent: the issuer is closing')
      this.#o.deliveries.inc({ outcome: 'failed' })
      return
    }
    const job: Promise<void> = this.#deliver(message).finally(() => this.#pending.delete(job))
    this.#pending.add(job)
  }

  /** Resolves once every queued message is delivered or given up. */
  async whenIdle(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all(this.#pending)
  }

  /** Stops retrying (messages still waiting count as failed), waits for attempts under way, closes. */
  async close(): Promise<void> {
    this.#closed = true
    for (const wake of this.#waits) wake()
    await this.whenIdle()
    this.#transport.close()
  }

  async #deliver(message: MailMessage): Promise<void> {
    const { settings, log, deliveries } = this.#o
    for (let attempt = 0; ; attempt++) {
      try {
        const where = await this.#transport.deliver(message)
        deliveries.inc({ outcome: 'sent' })
        log.info(
          { purpose: message.purpose, ...where },
          where.outbox ? 'mail written to the outbox' : 'mail sent',
        )
        return
      } catch (err) {
        const reason = failure(err)
        if (attempt >= settings.mailRetries || this.#closed) {
          deliveries.inc({ outcome: 'failed' })
          log.error({ purpose: message.purpose, attempts: attempt + 1, ...reason }, 'mail delivery failed')
          return
        }
        deliveries.inc({ outcome: 'retried' })
        log.warn(
          { purpose: message.purpose, attempt: attempt + 1, ...reason },
          'mail delivery failed; retrying',
        )
        await this.#wait(settings.mailRetryDelayMs * 2 ** attempt)
      }
    }
  }

  /** Waits `ms`, or less when the delivery closes. */
  #wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer)
        this.#waits.delete(wake)
        resolve()
      }
      const timer = setTimeout(wake, ms)
      this.#waits.add(wake)
    })
  }
}

/** What the log may say about a failure: codes and the server's reply, not the message. */
function failure(err: unknown): Record<string, unknown> {
  const e = err as { code?: unknown; responseCode?: unknown; command?: unknown; message?: unknown }
  return {
    code: typeof e.code === 'string' ? e.code : undefined,
    responseCode: typeof e.responseCode === 'number' ? e.responseCode : undefined,
    command: typeof e.command === 'string' ? e.command : undefined,
    reason: typeof e.message === 'string' ? e.message.slice(0, 200) : String(err),
  }
}

function smtpTransport(settings: MailSettings): Transport {
  const transporter = nodemailer.createTransport({
    url: settings.smtpUrl,
    // nodemailer upgrades with STARTTLS whenever the server offers it (and checks the certificate).
    connectionTimeout: settings.mailTimeoutMs,
    greetingTimeout: settings.mailTimeoutMs,
    socketTimeout: settings.mailTimeoutMs,
  })
  return {
    async deliver(message) {
      const info = await transporter.sendMail({
        from: settings.mailFrom,
        to: message.to,
        subject: message.subject,
        text: message.text,
      })
      return { messageId: info.messageId }
    },
    close: () => transporter.close(),
  }
}

function outboxTransport(settings: MailSettings): Transport {
  const composer = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix' })
  let written = 0
  return {
    async deliver(message) {
      // Named when handed over, not when composed: the names sort in the order the messages were sent,
      // even within one millisecond (a reader takes the last one as the latest code).
      const name = `${new Date().toISOString().replace(/[:.]/g, '-')}-${String(++written).padStart(9, '0')}-${randomBytes(4).toString('hex')}.eml`
      const info = await composer.sendMail({
        from: settings.mailFrom,
        to: message.to,
        subject: message.subject,
        text: message.text,
      })
      const file = join(settings.outboxDir, name)
      await createFileOnce(file, (info.message as Buffer).toString('utf8'))
      return { outbox: file }
    },
    close: () => composer.close(),
  }
}
