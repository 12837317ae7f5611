/**
 * A gateway stand-in for service tests: an Ed25519 key published at the gateway JWKS path over HTTP on
 * port 0, and `assert()` to sign identity assertions with it the way the gateway does.
 */
import { generateKeyPairSync, randomUUID } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import { calculateJwkThumbprint } from 'jose'
import type { Test } from 'tap'
import {
  ASSERTION_ALGORITHM,
  ASSERTION_TYPE,
  DEFAULT_ASSERTION_TTL_S,
  GATEWAY_JWKS_PATH,
} from '../../lib/identity/constants.js'
import { signWith } from './jws.js'

export interface GatewayKeys {
  /** Base URL, also the `iss` of the assertions. */
  url: string
  kid: string
  /** Signs an assertion; `claims` override the defaults (`aud` defaults to the audience given at start). */
  assert(claims: Record<string, unknown>): string
}

/**
 * Starts the stand-in; it is closed when `t` ends.
 * @example
 * const gateway = await startGatewayKeys(t, { audience: 'orders' })
 * const assertion = gateway.assert({ sub: 'alice', at_jti: 'tok-1', at_iat, at_iss, at_kid })
 */
export async function startGatewayKeys(t: Test, options: { audience?: string } = {}): Promise<GatewayKeys> {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519')
  const jwk = publicKey.export({ format: 'jwk' })
  const kid = await calculateJwkThumbprint(jwk as never)
  const app = Fastify({ forceCloseConnections: true })
  app.get(GATEWAY_JWKS_PATH, async () => ({
    keys: [{ ...jwk, kid, alg: ASSERTION_ALGORITHM, use: 'sig' }],
  }))
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const assert = (claims: Record<string, unknown>) => {
    const now = Math.floor(Date.now() / 1000)
    return signWith(
      { alg: ASSERTION_ALGORITHM, typ: ASSERTION_TYPE, kid },
      {
        iss: url,
        aud: options.audience ?? 'profile',
        iat: now,
        exp: now + DEFAULT_ASSERTION_TTL_S,
        jti: randomUUID(),
        roles: [],
        scope: '',
        ...claims,
      },
      privateKey,
      'EdDSA',
    )
  }
  return { url, kid, assert }
}
