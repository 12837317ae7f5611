/**
 * Reading the issuer's outbox (mail written as `.eml` files when no SMTP server is configured): tests wait
 * for queued mail, then read the login code from the message its owner would receive.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'

/** The `.eml` files in an outbox, oldest first (their names start with the time). */
export function outboxFiles(dataDir: string): string[] {
  const dir = join(dataDir, 'outbox')
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch {
    return []
  }
  return names
    .filter((name) => name.endsWith('.eml'))
    .sort()
    .map((name) => join(dir, name))
}

/** The login code in a message's text (see email-codes.ts). */
export function codeIn(message: string): string | undefined {
  return /login code is (\d{6})/.exec(message)?.[1]
}

/** Every message in the outbox sent to `to`, as raw text, once queued mail is written. */
export async function mailTo(app: FastifyInstance, dataDir: string, to: string): Promise<string[]> {
  await app.issuer.mail.whenIdle()
  return outboxFiles(dataDir)
    .map((file) => readFileSync(file, 'utf8'))
    .filter((message) => new RegExp(`^To: ${to.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm').test(message))
}

/** The code of the latest message to `to`; throws when there is none. */
export async function latestCode(app: FastifyInstance, dataDir: string, to: string): Promise<string> {
  const messages = await mailTo(app, dataDir, to)
  const code = codeIn(messages.at(-1) ?? '')
  if (!code) throw new Error(`no login code mailed to ${to}`)
  return code
}
