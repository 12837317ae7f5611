/**
 * Password hashing with bounded concurrency and priorities. argon2 runs on libuv's thread pool, first come
 * first served: a flood of registrations (each a hash) used to queue every login's verification behind it
 * (a normal login took 3.0 s instead of 0.3 s, see issue 13). Here at most `concurrency` hashes run at once;
 * new hashes (registration, a new password) may take all but one slot, so checking a password someone is
 * logging in with always has a slot of its own, and waiting checks go before waiting new hashes. A flood
 * then queues, in memory, instead of starving logins.
 */
import { availableParallelism } from 'node:os'
import { hashPassword, verifyPassword } from './credentials.js'

/** Hashes at once: the cores, at most libuv's default thread pool (4), where argon2 runs. */
export const DEFAULT_HASHING_CONCURRENCY = Math.max(2, Math.min(4, availableParallelism()))

export interface PasswordHashingOptions {
  concurrency?: number
  /** The hash and verify functions (credentials.ts); tests pass controllable ones. */
  hash?: (password: string) => Promise<string>
  verify?: (hash: string | undefined, password: string) => Promise<boolean>
}

type Waiter = () => void
type Kind = 'check' | 'hash'

/** The issuer's one way to hash and verify passwords. */
export class PasswordHashing {
  readonly #concurrency: number
  readonly #hash: (password: string) => Promise<string>
  readonly #verify: (hash: string | undefined, password: string) => Promise<boolean>
  #running = 0
  #runningHashes = 0
  readonly #waitingChecks: Waiter[] = []
  readonly #waitingHashes: Waiter[] = []

  constructor(options: PasswordHashingOptions = {}) {
    this.#concurrency = Math.max(2, options.concurrency ?? DEFAULT_HASHING_CONCURRENCY)
    this.#hash = options.hash ?? hashPassword
    this.#verify = options.verify ?? verifyPassword
  }

  /** Hashes a new password (registration, password change): yields to password checks. */
  hash(password: string): Promise<string> {
    return this.#run('hash', () => this.#hash(password))
  }

  /** Checks a password someone is logging in with (see credentials.ts `verifyPassword`). */
  verify(hash: string | undefined, password: string): Promise<boolean> {
    return this.#run('check', () => this.#verify(hash, password))
  }

  /** Waiting work, for metrics and tests. */
  get waiting(): { checks: number; hashes: number } {
    return { checks: this.#waitingChecks.length, hashes: this.#waitingHashes.length }
  }

  async #run<T>(kind: Kind, work: () => Promise<T>): Promise<T> {
    if (this.#free(kind)) this.#take(kind)
    else {
      // #next takes the slot for us before waking us, so no newcomer can slip in between.
      await new Promise<void>((resolve) =>
        (kind === 'check' ? this.#waitingChecks : this.#waitingHashes).push(resolve),
      )
    }
    try {
      return await work()
    } finally {
      this.#running--
      if (kind === 'hash') this.#runningHashes--
      this.#next()
    }
  }

  #free(kind: Kind): boolean {
    if (this.#running >= this.#concurrency) return false
    return kind === 'check' || this.#runningHashes < this.#concurrency - 1
  }

  #take(kind: Kind): void {
    this.#running++
    if (kind === 'hash') this.#runningHashes++
  }

  /** Hands freed slots to waiting checks first, then to waiting hashes that may have one. */
  #next(): void {
    for (;;) {
      if (this.#waitingChecks.length > 0 && this.#free('check')) {
        this.#take('check')
        this.#waitingChecks.shift()!()
      } else if (this.#waitingHashes.length > 0 && this.#free('hash')) {
        this.#take('hash')
        this.#waitingHashes.shift()!()
      } else return
    }
  }
}
