import t from 'tap'
import { localGatewayTrust } from '../../bin/local-proxies.js'
import { loadGatewayConfig } from '../../gateway/config.js'
import { issuerSettings, loadIssuerConfig } from '../../services/issuer/config.js'
import { loadProfileConfig } from '../../services/profile/config.js'

const local = {
  issuer: 'http://127.0.0.1:4000',
  profile: 'http://127.0.0.1:4101',
  orders: 'http://127.0.0.1:4102',
  files: 'http://127.0.0.1:4103',
}

t.test('keygate start: the issuer and the services believe the local gateway, and only it', async (t) => {
  const added = localGatewayTrust({}, local)
  t.same(added, { ISSUER_TRUST_PROXY: '127.0.0.1', SERVICE_TRUST_PROXY: '127.0.0.1' })
  t.same(issuerSettings(loadIssuerConfig(added)).trustProxy, ['127.0.0.1'], 'a valid issuer setting')
  t.equal(loadProfileConfig(added).SERVICE_TRUST_PROXY, '127.0.0.1')
  t.equal(loadGatewayConfig(added).GATEWAY_TRUST_PROXY, '', 'the gateway itself still believes no one')
})

t.test('what the operator set is kept; nothing is added off loopback', async (t) => {
  t.same(localGatewayTrust({ ISSUER_TRUST_PROXY: '' }, local), { SERVICE_TRUST_PROXY: '127.0.0.1' })
  t.same(localGatewayTrust({ SERVICE_TRUST_PROXY: '10.0.0.1' }, local), { ISSUER_TRUST_PROXY: '127.0.0.1' })
  t.same(localGatewayTrust({}, { ...local, issuer: 'http://issuer.internal:4000' }), {
    SERVICE_TRUST_PROXY: '127.0.0.1',
  })
  t.same(localGatewayTrust({}, { ...local, files: 'http://10.1.2.3:4103' }), {
    ISSUER_TRUST_PROXY: '127.0.0.1',
  })
  t.same(localGatewayTrust({}, { ...local, issuer: 'http://localhost:4000', profile: 'http://[::1]:4101' }), {
    ISSUER_TRUST_PROXY: '127.0.0.1,::1',
    SERVICE_TRUST_PROXY: '::1,127.0.0.1',
  })
})
