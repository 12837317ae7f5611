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
        const code = err instanceof KeygateHttpError && err.code ? ` (${err.code})` : ''
        say(`${(err as Error).message}${code}`, 'error')
      }
    },
  }
}

/** A JSON request body. */
export function json(method: string, body: unknown): RequestInit {
  return { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }
}
