import { join } from 'node:path'
import t from 'tap'
import { feedSecret } from '../../../../lib/auth-config.js'
import { FeedSecrets } from '../../../../services/issuer/feed/feed-secrets.js'
import { tempDir } from '../fixtures.js'

t.test('accepts exactly the configured secrets', async (t) => {
  const secrets = new FeedSecrets(['new-secret-0123456789', 'old-secret-0123456789'])
  t.ok(secrets.accepts('new-secret-0123456789'))
  t.ok(secrets.accepts('old-secret-0123456789'))
  for (const wrong of [
    '',
    'new-secret-012345678',
    'new-secret-0123456789 ',
    'NEW-SECRET-0123456789',
    undefined,
  ]) {
    t.notOk(secrets.accepts(wrong), JSON.stringify(wrong))
  }
  t.notOk(secrets.accepts(['new-secret-0123456789', 'x']), 'a repeated header is refused')
  t.throws(() => new FeedSecrets([]))
})

t.test(
  "without configuration: the secret generated in DATA_DIR, the one this machine's verifiers use",
  async (t) => {
    const dataDir = join(tempDir(t), 'data')
    const secrets = FeedSecrets.fromSettings(undefined, dataDir)
    t.ok(secrets.accepts(feedSecret({ DATA_DIR: dataDir })))
    t.notOk(
      FeedSecrets.fromSettings(['configured-secret-012345'], dataDir).accepts(
        feedSecret({ DATA_DIR: dataDir }),
      ),
    )
  },
)
