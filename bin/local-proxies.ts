/**
 * `keygate start` (what `npm start` runs) puts the gateway in front of the issuer and the services on this
 * machine. Behind it they see every request come from loopback; so that the issuer throttles the client's
 * address rather than the gateway's, they believe the gateway's X-Forwarded-For — and that is the one
 * place a forwarding header is believed by default. Only where the components are reached on loopback, and
 * never over a setting the operator gave.
 */

/** The address a local gateway connects from, for a component reached at `url`; undefined if not local. */
function loopbackPeers(url: string): string[] | undefined {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '')
  if (host === 'localhost') return ['127.0.0.1', '::1']
  if (host === '::1') return ['::1']
  if (/^127\.\d+\.\d+\.\d+$/.test(host)) return ['127.0.0.1']
  return undefined
}

/**
 * The trusted-proxy settings `keygate start` adds for the components it starts: ISSUER_TRUST_PROXY and
 * SERVICE_TRUST_PROXY set to the local gateway's loopback address, unless already set or not on loopback.
 * @example
 * localGatewayTrust({}, { issuer: 'http://127.0.0.1:4000', profile: …, orders: …, files: … })
 * // { ISSUER_TRUST_PROXY: '127.0.0.1', SERVICE_TRUST_PROXY: '127.0.0.1' }
 */
export function localGatewayTrust(
  env: Record<string, string | undefined>,
  urls: { issuer: string; profile: string; orders: string; files: string },
): Record<string, string> {
  const settings: Record<string, string> = {}
  const issuer = loopbackPeers(urls.issuer)
  if (env.ISSUER_TRUST_PROXY === undefined && issuer) settings.ISSUER_TRUST_PROXY = issuer.join(',')
  const services = [urls.profile, urls.orders, urls.files].map(loopbackPeers)
  if (env.SERVICE_TRUST_PROXY === undefined && services.every((peers) => peers !== undefined)) {
    settings.SERVICE_TRUST_PROXY = [...new Set(services.flat())].join(',')
  }
  return settings
}
