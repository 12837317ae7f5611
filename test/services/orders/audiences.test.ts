/**
 * Each service accepts its own audience (PROFILE_AUDIENCE, ORDERS_AUDIENCE, FILES_AUDIENCE) beside the API's:
 * a token or assertion captured at profile is refused at orders and files.
 */
import t from 'tap'
import { buildFiles } from '../../../services/files/app.js'
import { loadFilesConfig } from '../../../services/files/config.js'
import { buildOrders } from '../../../services/orders/app.js'
import { loadOrdersConfig } from '../../../services/orders/config.js'
import { buildProfile } from '../../../services/profile/app.js'
import { loadProfileConfig } from '../../../services/profile/config.js'
import { captureLogs } from '../../helpers/logs.js'
import { bearer, startServiceWorld } from '../../helpers/services.js'

t.test('a credential captured at profile is refused at orders and files', async (t) => {
  const world = await startServiceWorld(t)
  const env = { ...world.env, PROFILE_AUDIENCE: 'urn:test:profile' }
  const apps = {
    profile: buildProfile({ config: loadProfileConfig(env), logger: captureLogs().logger }),
    orders: buildOrders({ config: loadOrdersConfig(env), logger: captureLogs().logger }),
    files: buildFiles({ config: loadFilesConfig(env), logger: captureLogs().logger }),
  }
  for (const app of Object.values(apps)) {
    t.teardown(() => app.close())
    await app.ready()
  }
  const paths = { profile: '/me', orders: '/orders', files: '/files' }
  const forProfile = await world.token('alice', { aud: 'urn:test:profile' })
  const forApi = await world.token('alice')
  const assertion = world.assertionFor(forApi, 'profile')

  for (const [name, app] of Object.entries(apps)) {
    const url = paths[name as keyof typeof paths]
    const api = await app.inject({ url, headers: bearer(forApi) })
    t.equal(api.statusCode, 200, `${name} accepts the API audience`)
    const token = await app.inject({ url, headers: bearer(forProfile) })
    const asserted = await app.inject({ url, headers: { 'x-keygate-assertion': assertion } })
    if (name === 'profile') {
      t.equal(token.statusCode, 200, 'profile accepts a token addressed to it (PROFILE_AUDIENCE)')
      t.equal(asserted.statusCode, 200, 'and the assertion addressed to it')
      continue
    }
    t.equal(token.statusCode, 401, `${name} refuses a token addressed to profile`)
    t.equal(token.json().code, 'KG_TOKEN_AUDIENCE_INVALID')
    t.equal(asserted.statusCode, 401, `${name} refuses the assertion addressed to profile`)
    t.equal(asserted.json().code, 'KG_TOKEN_AUDIENCE_INVALID')
  }

  const defaults = await world.token('alice', { aud: 'keygate-orders' })
  const atOrders = await apps.orders.inject({ url: '/orders', headers: bearer(defaults) })
  t.equal(atOrders.statusCode, 200, 'ORDERS_AUDIENCE defaults to keygate-orders')
  const atFiles = await apps.files.inject({ url: '/files', headers: bearer(defaults) })
  t.equal(atFiles.statusCode, 401, 'which files refuses')
})
