/**
 * Per-client concurrency at the gateway: how many requests one client (its verified subject, else its
 * address) may have in progress at once — from the moment the gateway takes the request (its body not yet
 * read) until the upstream's answer starts to be relayed. Over the cap the request is refused at once
 * (429 KG_CLIENT_BUSY), so that no client can hold every body buffer or every upstream connection. One map
 * of counters: a request costs a key, a lookup and a store to enter, the same to leave.
 */
import type { FastifyRequest } from 'fastify'
import type { Identity } from '@keygate/fastify-auth'
import { KeygateError } from '../lib/errors.js'
import { clientAddress } from './rate-limits.js'

/** What a refused request is told to wait, in seconds. */
export const CLIENT_BUSY_RETRY_AFTER_S = 1

/** Counts requests in progress per client and refuses those over the cap. */
export class ClientConcurrency {
  readonly #inFlight = new Map<string, number>()
  readonly #max: number

  /** `max`: requests one client may have in progress (per gateway process). */
  constructor(max: number) {
    this.#max = max
  }

  /** The client a request counts against: the verified subject when there is one, else the address. */
  clientOf(request: FastifyRequest, caller: Identity | null): string {
    return caller === null ? `ip ${clientAddress(request)}` : `sub ${caller.issuer} ${caller.subject}`
  }

  /**
   * Counts one more request of `client`; every successful call is followed by exactly one `leave`.
   * @throws KeygateError KG_CLIENT_BUSY (429) when the client already has `max` requests in progress
   */
  enter(client: string): void {
    const count = this.#inFlight.get(client) ?? 0
    if (count >= this.#max) {
      throw new KeygateError('KG_CLIENT_BUSY', {
        headers: { 'retry-after': String(CLIENT_BUSY_RETRY_AFTER_S) },
      })
    }
    this.#inFlight.set(client, count + 1)
  }

  /** One request of `client` is over. */
  leave(client: string): void {
    const count = this.#inFlight.get(client)!
    if (count <= 1) this.#inFlight.delete(client)
    else this.#inFlight.set(client, count - 1)
  }
}
