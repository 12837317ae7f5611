/**
 * The documentation keeps up with the code: every error code is in docs/errors.md, every setting of every
 * component in docs/configuration.md.
 */
import { readFileSync } from 'node:fs'
import t from 'tap'
import { GatewayConfigSchema } from '../gateway/config.js'
import { ERRORS } from '../lib/errors.js'
import { FilesConfigSchema } from '../services/files/config.js'
import { IssuerConfigSchema } from '../services/issuer/config.js'
import { OrdersConfigSchema } from '../services/orders/config.js'
import { ProfileConfigSchema } from '../services/profile/config.js'

const doc = (name: string) => readFileSync(new URL(`../docs/${name}`, import.meta.url), 'utf8')

t.test('every error code is documented', async (t) => {
  const errors = doc('errors.md')
  for (const [code, spec] of Object.entries(ERRORS)) {
    t.match(errors, new RegExp(`\\| \`${code}\`\\s*\\| ${spec.status}\\s*\\|`), `${code} (${spec.status})`)
  }
})

t.test('every setting of every component is documented', async (t) => {
  const configuration = doc('configuration.md')
  const schemas = {
    issuer: IssuerConfigSchema,
    gateway: GatewayConfigSchema,
    profile: ProfileConfigSchema,
    orders: OrdersConfigSchema,
    files: FilesConfigSchema,
  }
  for (const [component, schema] of Object.entries(schemas)) {
    for (const setting of Object.keys(schema.properties)) {
      t.match(configuration, new RegExp(`\\| \`${setting}\`\\s*\\|`), `${component}: ${setting}`)
    }
  }
})
