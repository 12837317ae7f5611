/**
 * What the demo's pages share: the client, JSON calls through it, and the message line.
 */
import { KeygateHttpError, KeygateLoggedOutError, type KeygateClient } from '../index.js'
import { byId } from './dom.js'

export interface Demo {
  keygate: KeygateClient
  /** A JSON call through the gateway; throws KeygateHttpError on a failure status. */
  call<T = unknown>(path: string, init?: RequestInit): Promise<T>
  /** Shows a message (an error in red). */
  say(message: string, kind?: 'info' | 'error'): void
  /** Runs an action, showing its error (a logged-out error needs no message: the page switches). */
  attempt(action: () => Promise<unknown>): Promise<void>
}

export function createDemo(keygate: KeygateClient): Demo {
  const line = byId('message')
  const say: Demo['say'] = (message, kind = 'info') => {
    line.textContent = message
    line.dataset.kind = kind
  }
  return {
    keygate,
    say,
    async call<T>(path: string, init: RequestInit = {}): Promise<T> {
      const response = await keygate.fetch(path, init)
      if (!response.ok) throw await KeygateHttpError.from(response)
      return (response.status === 204 ? undefined : await response.json()) as T
    },
    async attempt(action) {
      try {
        await action()
      } catch (err) {
        if (err instanceof KeygateLoggedOutError) return
        say(readable(err), 'error')
        line.dataset.code = err instanceof KeygateHttpError ? err.code : ''
      }
    },
  }
}

/** What the person can do about the errors they meet most; otherwise the server's own sentence. */
const ADVICE: Record<string, string> = {
  KG_INVALID_CREDENTIALS: 'Wrong e-mail or password.',
  KG_EMAIL_CODE_INVALID: 'That code is wrong, expired or already used. Ask for a new one.',
  KG_LOGIN_METHOD_DISABLED: 'This way of logging in is switched off on this server right now.',
  KG_REGISTRATION_CLOSED: 'Registration is closed: ask an administrator for an account.',
  KG_EXTERNAL_IDENTITY_UNLINKED:
    'Your identity provider account is not linked to an account here yet. Log in another way first.',
}

function readable(err: unknown): string {
  if (err instanceof KeygateHttpError) {
    if (ADVICE[err.code]) return ADVICE[err.code]!
    if (err.status === 429) return `${err.message} Please wait a little before trying again.`
    if (err.status >= 500) return `The server could not answer (${err.message}). Please try again shortly.`
    return err.message
  }
  if (err instanceof TypeError) return 'The server cannot be reached. Check your connection and try again.'
  return (err as Error).message
}

/** A JSON request body. */
export function json(method: string, body: unknown): RequestInit {
  return { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }
}
