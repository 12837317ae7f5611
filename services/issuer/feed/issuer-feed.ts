/**
 * The serving side of the revocation feed in one instance: the fan-out reading the event table, the
 * wake-ups that make it read (a local write, a PostgreSQL notification from another instance, the poll),
 * the open streams it feeds, and the secrets verifiers present. `buildIssuer` starts it when ready, ends
 * its streams before the server closes, and stops it after.
 */
import type { FastifyBaseLogger } from 'fastify'
import { isPostgresUrl } from '../../../lib/db.js'
import type { IssuerSettings } from '../config.js'
import type { IssuerStore } from '../store/types.js'
import { FeedSecrets } from './feed-secrets.js'
import { RevocationFanout } from './revocation-fanout.js'
import { RevocationNotifications } from './revocation-notifications.js'
import { RevocationStreams } from './revocation-streams.js'

export interface IssuerFeedOptions {
  settings: IssuerSettings
  store: IssuerStore
  log: FastifyBaseLogger
  now: () => number
  /** Where the generated feed secret lives when REVOCATION_FEED_SECRET is not set. */
  dataDir: string
}

/** The feed's moving parts, started and stopped together. */
export class IssuerFeed {
  readonly fanout: RevocationFanout
  readonly streams: RevocationStreams
  readonly secrets: FeedSecrets
  /** The LISTEN connection (PostgreSQL only). */
  readonly notifications: RevocationNotifications | undefined

  constructor(options: IssuerFeedOptions) {
    const { settings, store, log } = options
    this.secrets = FeedSecrets.fromSettings(settings.feedSecrets, options.dataDir)
    this.fanout = new RevocationFanout({ store, log, pollIntervalMs: settings.feedPollIntervalMs })
    const fanout = this.fanout
    this.notifications = isPostgresUrl(settings.databaseUrl)
      ? new RevocationNotifications({ url: settings.databaseUrl, log, onWake: () => void fanout.wake() })
      : undefined
    this.streams = new RevocationStreams({
      store,
      fanout,
      log,
      now: options.now,
      heartbeatMs: settings.feedHeartbeatMs,
      maxStreams: settings.feedMaxStreams,
    })
  }

  async start(): Promise<void> {
    await this.fanout.start()
    await this.notifications?.start()
  }

  /** Ends every open stream; called before the server closes, which would otherwise wait for them. */
  closeStreams(): void {
    this.streams.closeAll()
  }

  async stop(): Promise<void> {
    this.streams.closeAll()
    await this.notifications?.stop()
    await this.fanout.stop()
    this.streams.stop()
  }
}
