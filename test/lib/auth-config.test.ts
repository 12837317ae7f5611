/**
 * lib/auth-config.ts: the trusted issuers a component ends up with. keygate's own issuer (ISSUER_URL) and its
 * revocation feed are never dropped by TRUSTED_ISSUERS, only by TRUST_OWN_ISSUER=off.
 */
import t from 'tap'
import { authOptionsFromConfig } from '../../lib/auth-config.js'
import { loadProfileConfig } from '../../services/profile/config.js'

const OWN = 'http://keygate.test'
const IDP = 'https://tenant.eu.auth0.com/'
const base = { ISSUER_URL: OWN, REVOCATION_FEED_SECRET: 'a-test-secret-of-16+' }
const issuersOf = (env: Record<string, string>, serviceAudience?: string) =>
  authOptionsFromConfig(
    loadProfileConfig({ ...base, ...env }),
    serviceAudience === undefined ? {} : { serviceAudience },
  ).issuers

t.test('by default: keygate’s own issuer, the API audience and the service’s own, its feed', async (t) => {
  t.match(issuersOf({}, 'keygate-profile'), [
    {
      issuer: OWN,
      own: true,
      audiences: ['keygate-api', 'keygate-profile'],
      revocationFeed: `${OWN}/revocations`,
    },
  ])
})

t.test('TRUSTED_ISSUERS adds issuers beside keygate’s own, never instead of it', async (t) => {
  const issuers = issuersOf({ TRUSTED_ISSUERS: JSON.stringify([{ issuer: IDP, audiences: ['api'] }]) })
  t.equal(issuers.length, 2)
  t.match(issuers[0], { issuer: OWN, own: true, revocationFeed: `${OWN}/revocations` })
  t.match(issuers[1], { issuer: IDP, audiences: ['api'] })
  t.notOk(issuers[1]!.own, 'another issuer is not keygate’s own')
  t.equal(issuers[1]!.revocationFeed, undefined)
})

t.test('keygate’s own issuer listed explicitly keeps its feed and gets the service audience', async (t) => {
  const issuers = issuersOf(
    {
      TRUSTED_ISSUERS: JSON.stringify([
        { issuer: OWN, audiences: ['custom-api'], algorithms: ['RS256', 'PS256'] },
        { issuer: IDP, audiences: ['api'], grants: { roles: ['admin'], scopes: '*' } },
      ]),
    },
    'keygate-orders',
  )
  t.equal(issuers.length, 2)
  t.match(issuers[0], {
    issuer: OWN,
    own: true,
    audiences: ['custom-api', 'keygate-orders'],
    revocationFeed: `${OWN}/revocations`,
  })
  t.match(issuers[1], { grants: { roles: ['admin'], scopes: '*' } })
})

t.test('TRUST_OWN_ISSUER=off trusts only the listed issuers, and needs one', async (t) => {
  const only = issuersOf({
    TRUST_OWN_ISSUER: 'off',
    TRUSTED_ISSUERS: JSON.stringify([{ issuer: IDP, audiences: ['api'] }]),
  })
  t.match(only, [{ issuer: IDP }])
  t.equal(only.length, 1)
  t.throws(() => issuersOf({ TRUST_OWN_ISSUER: 'off' }), /TRUST_OWN_ISSUER is off/)
})

t.test('an issuer with # is refused: it separates issuer and subject in principal ids', async (t) => {
  t.throws(
    () => issuersOf({ TRUSTED_ISSUERS: JSON.stringify([{ issuer: 'https://a.test#b', audiences: ['x'] }]) }),
    /TRUSTED_ISSUERS\/0\/issuer/,
  )
  t.throws(
    () =>
      issuersOf({
        TRUSTED_ISSUERS: JSON.stringify([{ issuer: IDP, audiences: ['x'], grants: { roles: 'admin' } }]),
      }),
    /TRUSTED_ISSUERS\/0\/grants/,
  )
})
