/**
 * Starts foreign-idp-process.ts as its own process (its own keys and JWKS) and mints tokens through it. The
 * process is stopped at teardown.
 * @example
 * const idp = await startForeignIdp(t)
 * const token = await idp.auth0.mint({ 'https://keygate.test/roles': ['admin'] })
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import type { Test } from 'tap'
import { request } from 'undici'

const SCRIPT = new URL('./foreign-idp-process.ts', import.meta.url).pathname

export interface ForeignIssuer {
  /** The exact `iss`. */
  issuer: string
  jwksUri: string
  /** Signs a token: `claims` and `header` over the issuer's defaults (`null` removes one). */
  mint(claims?: Record<string, unknown>, header?: Record<string, unknown>): Promise<string>
}

export interface ForeignIdp {
  url: string
  /** Auth0-shaped, PS256. */
  auth0: ForeignIssuer
  /** Keycloak-shaped, ES256. */
  keycloak: ForeignIssuer
  /** RS256, its one key without `kid` and `alg`; tokens without `kid`. */
  bare: ForeignIssuer
  /** RS256, keys `twin-1` (signs), `twin-2` and one without `kid`. */
  twin: ForeignIssuer
  /** Stops the process (also done at teardown). */
  stop(): Promise<void>
}

export async function startForeignIdp(t: Test): Promise<ForeignIdp> {
  const child = spawn(process.execPath, ['--conditions=keygate-source', '--import', 'tsx', SCRIPT], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const exited = once(child, 'exit')
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    await exited
  }
  t.teardown(stop)
  const lines = createInterface({ input: child.stdout! })
  const first = await Promise.race([
    once(lines, 'line').then(([line]) => line as string),
    exited.then(() => {
      throw new Error('the foreign IdP exited before listening')
    }),
  ])
  const { url } = JSON.parse(first) as { url: string }
  const issuer = (path: string, jwks: string): ForeignIssuer => ({
    issuer: `${url}${path}`,
    jwksUri: `${url}${jwks}`,
    async mint(claims = {}, header = {}) {
      const res = await request(`${url}${path.replace(/\/$/, '')}/mint`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ claims, header }),
      })
      return ((await res.body.json()) as { token: string }).token
    },
  })
  return {
    url,
    auth0: issuer('/auth0/', '/auth0/jwks'),
    keycloak: issuer('/realms/demo', '/realms/demo/jwks'),
    bare: issuer('/bare/', '/bare/jwks'),
    twin: issuer('/twin/', '/twin/jwks'),
    stop,
  }
}
