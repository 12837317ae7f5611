import t from 'tap'
import { loadOrdersConfig } from '../../../services/orders/config.js'

t.test('defaults: port 4102, profile on its default port, a 3 s profile timeout', async (t) => {
  const config = loadOrdersConfig({})
  t.equal(config.ORDERS_PORT, 4102)
  t.equal(config.PROFILE_URL, 'http://127.0.0.1:4101')
  t.equal(config.ORDERS_PROFILE_TIMEOUT, 3000, 'in milliseconds')
  t.equal(loadOrdersConfig({ PROFILE_URL: 'http://profile:9000/' }).PROFILE_URL, 'http://profile:9000')
  t.throws(() => loadOrdersConfig({ ORDERS_PROFILE_TIMEOUT: 'soon' }), /ORDERS_PROFILE_TIMEOUT/)
})
