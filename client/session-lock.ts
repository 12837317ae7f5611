/**
 * One session operation at a time across every tab of the origin (refresh, login, logout, logout-all).
 *
 * Why: the issuer rotates the refresh token on every refresh, and a rotated token presented again revokes the
 * whole session (only a 10 s grace window saves two tabs that race). With the Web Locks API the tabs queue
 * behind one named lock, so they never present the same refresh token twice; the tab that waited then finds
 * the winner's result (announced over the tab channel) and usually has nothing left to do. Where Web Locks
 * are missing, operations are still serialised within the tab, and the issuer's grace window covers tabs.
 */
import type { LockRequester } from './runtime.js'

export class SessionLock {
  readonly #locks: LockRequester | undefined
  /** This tab's queue, used only without Web Locks. */
  #tail: Promise<unknown> = Promise.resolve()

  constructor(
    readonly name: string,
    locks: LockRequester | undefined,
  ) {
    this.#locks = locks
  }

  /** Whether the lock spans tabs (Web Locks) or only this tab. */
  get crossTab(): boolean {
    return this.#locks !== undefined
  }

  /** Runs `operation` holding the lock; the lock is released when its promise settles. */
  run<T>(operation: () => Promise<T>): Promise<T> {
    if (this.#locks) return this.#locks.request(this.name, operation)
    const result = this.#tail.then(operation, operation)
    this.#tail = result.catch(() => undefined)
    return result
  }
}
