/**
 * The issuer's Prometheus metrics, registered in the instance's registry (`app.metrics`).
 */
import { Counter, Gauge, type Registry } from 'prom-client'
import type { IssuerFeed } from './feed/issuer-feed.js'
import { KEY_STATES } from './keys/key-document.js'
import type { KeySet } from './keys/key-set.js'
import { MAIL_DELIVERY_OUTCOMES } from './mail/mail-delivery.js'

export type LoginOutcome = 'success' | 'invalid_credentials' | 'throttled'
export type RefreshOutcome = 'rotated' | 'grace' | 'invalid' | 'reused' | 'csrf_failed' | 'cross_site'

export type EmailCodeOutcome = 'requested' | 'throttled' | 'verified' | 'invalid'
export type ExternalLoginOutcome =
  'success' | 'invalid_token' | 'inactive' | 'provider_unavailable' | 'unlinked'

export interface IssuerMetrics {
  logins: Counter<'outcome'>
  /** E-mail code requests and verifications by outcome. */
  emailCodes: Counter<'outcome'>
  /** Mail delivery attempts by outcome (`sent`, `retried`, `failed`). */
  mailDeliveries: Counter<'outcome'>
  /** External-token logins by outcome. */
  externalLogins: Counter<'outcome'>
  refreshes: Counter<'outcome'>
  refreshReuse: Counter
  tokensIssued: Counter
}

/** Creates the issuer's metrics in `registry`; the key gauge reads the key set when scraped. */
export function createIssuerMetrics(registry: Registry, keys: KeySet): IssuerMetrics {
  new Gauge({
    name: 'keygate_issuer_keys',
    help: 'Signing keys by state',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const counts = keys.countByState()
      for (const state of KEY_STATES) this.set({ state }, counts[state])
    },
  })
  const logins = new Counter({
    name: 'keygate_issuer_logins_total',
    help: 'Password logins by outcome',
    labelNames: ['outcome'],
    registers: [registry],
  })
  const refreshes = new Counter({
    name: 'keygate_issuer_refreshes_total',
    help: 'Refresh-token exchanges by outcome',
    labelNames: ['outcome'],
    registers: [registry],
  })
  for (const outcome of ['success', 'invalid_credentials', 'throttled'] satisfies LoginOutcome[]) {
    logins.inc({ outcome }, 0)
  }
  for (const outcome of [
    'rotated',
    'grace',
    'invalid',
    'reused',
    'csrf_failed',
    'cross_site',
  ] satisfies RefreshOutcome[]) {
    refreshes.inc({ outcome }, 0)
  }
  const emailCodes = new Counter({
    name: 'keygate_issuer_email_codes_total',
    help: 'E-mail login code requests and verifications by outcome',
    labelNames: ['outcome'],
    registers: [registry],
  })
  for (const outcome of ['requested', 'throttled', 'verified', 'invalid'] satisfies EmailCodeOutcome[]) {
    emailCodes.inc({ outcome }, 0)
  }
  const mailDeliveries = new Counter({
    name: 'keygate_issuer_mail_deliveries_total',
    help: 'Mail delivery attempts by outcome (retried: failed and will be tried again; failed: given up)',
    labelNames: ['outcome'],
    registers: [registry],
  })
  for (const outcome of MAIL_DELIVERY_OUTCOMES) mailDeliveries.inc({ outcome }, 0)
  const externalLogins = new Counter({
    name: 'keygate_issuer_external_logins_total',
    help: 'Logins with an external issuer token by outcome',
    labelNames: ['outcome'],
    registers: [registry],
  })
  for (const outcome of [
    'success',
    'invalid_token',
    'inactive',
    'provider_unavailable',
    'unlinked',
  ] satisfies ExternalLoginOutcome[]) {
    externalLogins.inc({ outcome }, 0)
  }
  return {
    logins,
    emailCodes,
    mailDeliveries,
    externalLogins,
    refreshes,
    refreshReuse: new Counter({
      name: 'keygate_issuer_refresh_reuse_total',
      help: 'Rotated refresh tokens presented again after the grace window (each revoked its session)',
      registers: [registry],
    }),
    tokensIssued: new Counter({
      name: 'keygate_issuer_tokens_issued_total',
      help: 'Access tokens issued',
      registers: [registry],
    }),
  }
}

/** Gauges of the revocation feed this instance serves, read when scraped. */
export function watchIssuerFeed(registry: Registry, feed: IssuerFeed): void {
  new Gauge({
    name: 'keygate_issuer_feed_streams',
    help: 'Revocation streams open on this instance',
    registers: [registry],
    collect() {
      this.set(feed.streams.open)
    },
  })
  new Gauge({
    name: 'keygate_issuer_feed_cursor',
    help: 'Latest revocation cursor this instance has read from the store',
    registers: [registry],
    collect() {
      this.set(feed.fanout.cursor)
    },
  })
  if (feed.notifications) {
    const notifications = feed.notifications
    new Gauge({
      name: 'keygate_issuer_feed_listening',
      help: '1 while the PostgreSQL LISTEN connection (revocations by other instances) is up',
      registers: [registry],
      collect() {
        this.set(notifications.connected ? 1 : 0)
      },
    })
  }
}
