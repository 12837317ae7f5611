/**
 * The attacker's side of hostile-token tests: a key pair and a server the attacker controls. The server
 * answers every path with the attacker's JWKS (so a verifier that followed a `jku`, `x5u` or redirect would
 * find keys there) and counts every connection it accepts: the tests assert it stays at zero. A FIFO stands
 * in for a file a `kid` or `x5u` may name: opening it to read blocks, which `wasOpened()` detects.
 */
import { execFileSync } from 'node:child_process'
import { generateKeyPairSync, type KeyObject } from 'node:crypto'
import { constants, mkdtempSync, openSync, closeSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface Attacker {
  /** Base URL of the attacker's server. */
  url: string
  /** The attacker's own RSA key pair (2048 bits) and its public JWK, kid `attacker`. */
  privateKey: KeyObject
  publicKey: KeyObject
  publicJwk: Record<string, unknown>
  /** TCP connections accepted so far (a request that never parsed still counts). */
  readonly connections: number
  /** Requests seen so far, as `METHOD path`. */
  readonly requests: string[]
  /** A FIFO path: anything that tries to read it blocks and is caught by `wasOpened()`. */
  fifo: string
  /** True when some process has the FIFO open for reading right now (a blocked file read). */
  wasOpened(): boolean
  close(): Promise<void>
}

/**
 * Starts the attacker's server on 127.0.0.1 and makes the FIFO trap.
 * @example
 * const attacker = await startAttacker()
 * // … send tokens whose jku is `${attacker.url}/jwks.json` …
 * t.equal(attacker.connections, 0)
 */
export async function startAttacker(): Promise<Attacker> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const publicJwk = { ...publicKey.export({ format: 'jwk' }), kid: 'attacker', alg: 'RS256', use: 'sig' }
  const requests: string[] = []
  let connections = 0
  const server: Server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`)
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=3600' })
    res.end(JSON.stringify({ keys: [publicJwk, { kty: 'oct', kid: 'attacker-hmac', k: 'c2VjcmV0' }] }))
  })
  server.on('connection', () => connections++)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const dir = mkdtempSync(join(tmpdir(), 'kg-attacker-'))
  const fifo = join(dir, 'secret-key')
  execFileSync('mkfifo', [fifo])
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    privateKey,
    publicKey,
    publicJwk,
    get connections() {
      return connections
    },
    requests,
    fifo,
    wasOpened() {
      // A non-blocking open for writing fails with ENXIO unless a reader has the FIFO open.
      try {
        const fd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK)
        closeSync(fd)
        return true
      } catch {
        return false
      }
    },
    async close() {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
