/**
 * Prometheus metrics of the verification plugin, per issuer and per outcome.
 */
import { Counter, Gauge, type Registry } from 'prom-client'
import { CounterCells } from './counter-cells.js'
import type { RevocationFeed } from './revocation-feed.js'

/** What a key source reports to the metrics at scrape time. */
export interface KeySourceStatus {
  /** Seconds since the key set was last fetched successfully, or -1 before the first success. */
  ageSeconds(): number
  /** True while serving keys past their cache lifetime because refreshing failed. */
  servingStale(): boolean
  /** Keys of the current set that cannot be used. */
  refusedKeys(): readonly unknown[]
}

export class AuthMetrics {
  readonly verifications: Counter<'issuer' | 'result' | 'reason'>
  readonly verifiedCache: Counter<'result'>
  /** Per-request counting for `verifications` and `verifiedCache` (flushed into them at every scrape). */
  readonly verificationCells = new CounterCells<'issuer' | 'result' | 'reason'>()
  readonly verifiedCacheCells = new CounterCells<'result'>()
  readonly jwksFetches: Counter<'issuer' | 'outcome'>
  readonly unknownKid: Counter<'issuer'>
  readonly feedEvents: Counter<'issuer' | 'type'>
  readonly #sources = new Map<string, KeySourceStatus>()
  readonly #issuers = new Map<string, { source: { usable(): boolean }; required: boolean }>()
  readonly #feeds = new Map<string, RevocationFeed>()

  constructor(registry: Registry) {
    const registers = [registry]
    const verificationCells = this.verificationCells
    const verifiedCacheCells = this.verifiedCacheCells
    this.verifications = new Counter({
      name: 'keygate_auth_verifications_total',
      help: 'Token verifications by issuer, result (valid|invalid) and reason (an error code, or cache|fresh)',
      labelNames: ['issuer', 'result', 'reason'],
      registers,
      collect() {
        verificationCells.flush(this)
      },
    })
    this.verifiedCache = new Counter({
      name: 'keygate_auth_verified_cache_total',
      help: 'Verified-token cache lookups by result (hit|miss)',
      labelNames: ['result'],
      registers,
      collect() {
        verifiedCacheCells.flush(this)
      },
    })
    this.jwksFetches = new Counter({
      name: 'keygate_jwks_fetches_total',
      help: 'JWKS fetches by issuer and outcome (ok|error)',
      labelNames: ['issuer', 'outcome'],
      registers,
    })
    this.unknownKid = new Counter({
      name: 'keygate_jwks_unknown_kid_total',
      help: 'Tokens naming a kid absent from the key set',
      labelNames: ['issuer'],
      registers,
    })
    this.feedEvents = new Counter({
      name: 'keygate_revocation_events_total',
      help: 'Revocation events applied, by issuer and type',
      labelNames: ['issuer', 'type'],
      registers,
    })
    const feeds = this.#feeds
    new Gauge({
      name: 'keygate_revocation_feed_up',
      help: '1 while the revocation feed stream is live',
      labelNames: ['issuer'],
      registers,
      collect() {
        for (const [issuer, f] of feeds) this.set({ issuer }, f.state === 'live' ? 1 : 0)
      },
    })
    new Gauge({
      name: 'keygate_revocation_feed_silence_seconds',
      help: 'Seconds since the revocation feed last heard from the issuer',
      labelNames: ['issuer'],
      registers,
      collect() {
        for (const [issuer, f] of feeds) this.set({ issuer }, f.silenceSeconds())
      },
    })
    new Gauge({
      name: 'keygate_revocation_feed_cursor_lag',
      help: 'Revocation events recorded by the issuer and not yet applied here',
      labelNames: ['issuer'],
      registers,
      collect() {
        for (const [issuer, f] of feeds) this.set({ issuer }, f.cursorLag())
      },
    })
    const sources = this.#sources
    new Gauge({
      name: 'keygate_jwks_key_set_age_seconds',
      help: 'Seconds since the key set was last fetched successfully (-1: never)',
      labelNames: ['issuer'],
      registers,
      collect() {
        for (const [issuer, s] of sources) this.set({ issuer }, s.ageSeconds())
      },
    })
    new Gauge({
      name: 'keygate_jwks_serving_stale',
      help: '1 while keys are served past their cache lifetime because the issuer is unreachable',
      labelNames: ['issuer'],
      registers,
      collect() {
        for (const [issuer, s] of sources) this.set({ issuer }, s.servingStale() ? 1 : 0)
      },
    })
    new Gauge({
      name: 'keygate_jwks_keys_refused',
      help: "Keys of an issuer's current JWKS that cannot be used (readiness detail names them and why)",
      labelNames: ['issuer'],
      registers,
      collect() {
        for (const [issuer, s] of sources) this.set({ issuer }, s.refusedKeys().length)
      },
    })
    const issuers = this.#issuers
    new Gauge({
      name: 'keygate_auth_issuer_keys_usable',
      help: "1 while a trusted issuer's keys can vouch for its tokens; required=false: readiness does not wait for it",
      labelNames: ['issuer', 'required'],
      registers,
      collect() {
        for (const [issuer, i] of issuers) {
          this.set({ issuer, required: String(i.required) }, i.source.usable() ? 1 : 0)
        }
      },
    })
  }

  /** Reports `keygate_auth_issuer_keys_usable{issuer, required}` for a trusted issuer (or the gateway). */
  watchIssuer(issuer: string, source: { usable(): boolean }, required: boolean): void {
    this.#issuers.set(issuer, { source, required })
  }

  watchKeySource(issuer: string, status: KeySourceStatus): void {
    this.#sources.set(issuer, status)
  }

  watchFeed(issuer: string, feed: RevocationFeed): void {
    this.#feeds.set(issuer, feed)
  }
}
