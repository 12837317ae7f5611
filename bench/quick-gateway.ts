/**
 * A quick, indicative measure of the gateway's throughput on one route, without and with authentication
 * (one valid token reused), in one run with the same settings. The upstream (a tiny Fastify JSON server) runs
 * in a child process and autocannon in another, so the gateway's event loop is its own; on a 2-core machine
 * the three still share the CPUs. For reference it also measures the upstream directly and a bare
 * @fastify/reply-from proxy.
 *
 *   npx tsx bench/quick-gateway.ts [--connections 50] [--duration 10]
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs, promisify } from 'node:util'
import replyFrom from '@fastify/reply-from'
import Fastify from 'fastify'
import { buildGateway } from '../gateway/app.js'
import { loadGatewayConfig } from '../gateway/config.js'
import { createLogger } from '../lib/server.js'
import { startTokenIssuer } from '../test/helpers/token-issuer.js'

/** A discarded run before each measured one, in seconds. */
const WARMUP_S = 3
const AUTOCANNON = join(import.meta.dirname, '..', 'node_modules', '.bin', 'autocannon')

async function upstreamProcess(): Promise<void> {
  const app = Fastify({ logger: false })
  app.get('/*', async () => ({ hello: 'world' }))
  await app.listen({ host: '127.0.0.1', port: 0 })
  process.stdout.write(`${(app.server.address() as AddressInfo).port}\n`)
}

async function startUpstream(): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', import.meta.filename, 'upstream'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const [line] = (await once(child.stdout!, 'data')) as [Buffer]
  return { url: `http://127.0.0.1:${line.toString().trim()}`, child }
}

interface Result {
  requests: { average: number }
  latency: { p50: number; p99: number }
  non2xx: number
  errors: number
}

async function load(
  url: string,
  connections: number,
  duration: number,
  headers: string[] = [],
): Promise<Result> {
  const args = [
    '-c',
    String(connections),
    '-d',
    String(duration),
    '-j',
    ...headers.flatMap((h) => ['-H', h]),
    url,
  ]
  const { stdout } = await promisify(execFile)(AUTOCANNON, args, { maxBuffer: 16 * 1024 * 1024 })
  return JSON.parse(stdout) as Result
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { connections: { type: 'string', default: '50' }, duration: { type: 'string', default: '10' } },
  })
  const connections = Number(values.connections)
  const duration = Number(values.duration)
  const upstream = await startUpstream()
  const issuer = await startTokenIssuer()
  const config = loadGatewayConfig({
    LOG_LEVEL: 'error',
    GATEWAY_PORT: '0',
    ISSUER_URL: issuer.url,
    KEYS_DIR: mkdtempSync(join(tmpdir(), 'kg-bench-keys-')),
    GATEWAY_RATE_LIMIT: '1000000000/1m',
  })
  const gateway = await buildGateway({
    config,
    logger: createLogger({ name: 'gateway', level: 'error' }),
    routes: {
      upstreams: { bench: upstream.url },
      routes: [
        { prefix: '/open', upstream: 'bench', auth: { mode: 'none' } },
        { prefix: '/secure', upstream: 'bench', auth: { mode: 'required' } },
      ],
    },
  })
  await gateway.listen({ host: '127.0.0.1', port: 0 })
  await gateway.auth.ready()
  const gatewayUrl = `http://127.0.0.1:${(gateway.server.address() as AddressInfo).port}`

  const reference = Fastify({ logger: false })
  await reference.register(replyFrom, { base: upstream.url })
  reference.get('/*', (request, reply) => reply.from(request.url))
  await reference.listen({ host: '127.0.0.1', port: 0 })
  const referenceUrl = `http://127.0.0.1:${(reference.server.address() as AddressInfo).port}`

  const token = await issuer.mint()
  const runs: Array<[string, string, string[]]> = [
    ['upstream directly', `${upstream.url}/x`, []],
    ['@fastify/reply-from (no auth)', `${referenceUrl}/x`, []],
    ['gateway, auth none', `${gatewayUrl}/open/x`, []],
    ['gateway, auth required (token reused)', `${gatewayUrl}/secure/x`, [`authorization=Bearer ${token}`]],
  ]
  console.log(
    `autocannon -c ${connections} -d ${duration} (after ${WARMUP_S} s warm-up); node ${process.version}`,
  )
  for (const [name, url, headers] of runs) {
    await load(url, connections, WARMUP_S, headers) // JIT and pools warm, discarded
    const cpu = process.cpuUsage()
    const r = await load(url, connections, duration, headers)
    const { user, system } = process.cpuUsage(cpu)
    // CPU time of this process (the proxies; the upstream and autocannon run apart) per request: steadier than
    // req/s when other work shares the machine. Meaningless for the direct run.
    const perRequest = (user + system) / (r.requests.average * duration)
    console.log(
      `${name.padEnd(40)} ${Math.round(r.requests.average).toString().padStart(7)} req/s` +
        `  p50 ${r.latency.p50} ms  p99 ${r.latency.p99} ms  proxy CPU ${perRequest.toFixed(0)} µs/req` +
        `  non-2xx ${r.non2xx}  errors ${r.errors}`,
    )
  }
  await gateway.close()
  await reference.close()
  await issuer.close()
  upstream.child.kill()
}

if (process.argv[2] === 'upstream') await upstreamProcess()
else await main()
