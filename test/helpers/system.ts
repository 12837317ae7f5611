/**
 * The whole system for end-to-end tests, started the way `npm start` starts it (`keygate start`: every
 * component its own process), on free ports with fresh key and data directories.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import type { Component } from '../../lib/config.js'

const ROOT = new URL('../../', import.meta.url).pathname

/** A port the kernel just handed out and took back: free unless someone races for it. */
export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

export interface RunningSystem {
  urls: Record<Component, string>
  /** Each component's ops listener (`/readyz`, `/metrics`), on loopback. */
  opsUrls: Record<Component, string>
  env: Record<string, string>
  /** Everything the processes printed so far. */
  output(): string
  /** Stops every component (SIGTERM to the supervisor) and resolves with its exit code. */
  stop(): Promise<number | null>
  dataDir: string
  keysDir: string
}

export interface StartSystemOptions {
  /** Extra environment for every component. */
  env?: Record<string, string>
  /** How long to wait for the banner, in milliseconds. */
  timeoutMs?: number
}

/**
 * Starts `keygate start` and resolves once it announced that everything is up.
 * @example
 * const system = await startSystem()
 * t.teardown(() => system.stop())
 */
export async function startSystem(options: StartSystemOptions = {}): Promise<RunningSystem> {
  const work = mkdtempSync(join(tmpdir(), 'kg-e2e-'))
  const ports = {
    issuer: await freePort(),
    gateway: await freePort(),
    profile: await freePort(),
    orders: await freePort(),
    files: await freePort(),
  }
  const opsPorts = {
    issuer: await freePort(),
    gateway: await freePort(),
    profile: await freePort(),
    orders: await freePort(),
    files: await freePort(),
  }
  const urlsOf = (p: Record<Component, number>) =>
    Object.fromEntries(Object.entries(p).map(([name, port]) => [name, `http://127.0.0.1:${port}`])) as Record<
      Component,
      string
    >
  const urls = urlsOf(ports)
  const opsUrls = urlsOf(opsPorts)
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    ISSUER_PORT: String(ports.issuer),
    GATEWAY_PORT: String(ports.gateway),
    PROFILE_PORT: String(ports.profile),
    ORDERS_PORT: String(ports.orders),
    FILES_PORT: String(ports.files),
    ...Object.fromEntries(
      Object.entries(opsPorts).map(([c, p]) => [`${c.toUpperCase()}_OPS_PORT`, String(p)]),
    ),
    DATA_DIR: join(work, 'data'),
    KEYS_DIR: join(work, 'keys'),
    LOG_PRETTY: 'false',
    ...options.env,
  }
  const child: ChildProcess = spawn(
    process.execPath,
    ['--conditions=keygate-source', '--import', 'tsx', join(ROOT, 'bin/keygate.ts'), 'start'],
    {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  let out = ''
  child.stdout!.on('data', (d) => (out += d))
  child.stderr!.on('data', (d) => (out += d))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))

  const deadline = Date.now() + (options.timeoutMs ?? 60_000)
  while (!out.includes('keygate is up')) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`keygate start did not come up:\n${out.slice(-4000)}`)
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  return {
    urls,
    opsUrls,
    env,
    dataDir: env.DATA_DIR!,
    keysDir: env.KEYS_DIR!,
    output: () => out,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM')
      const code = await exited
      rmSync(work, { recursive: true, force: true })
      return code
    },
  }
}

/** A small JSON client for walking the system over HTTP, with a cookie jar like a browser's (one origin). */
export class HttpClient {
  readonly cookies = new Map<string, string>()
  constructor(readonly base: string) {}

  async call(
    method: string,
    path: string,
    options: { token?: string; body?: unknown; headers?: Record<string, string>; raw?: string } = {},
  ) {
    const headers: Record<string, string> = { ...options.headers }
    if (options.token) headers.authorization = `Bearer ${options.token}`
    if (options.body !== undefined) headers['content-type'] = 'application/json'
    if (this.cookies.size) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
    const res = await request(`${this.base}${path}`, {
      method: method as 'GET',
      headers,
      body: options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body)),
    })
    const setCookie = res.headers['set-cookie']
    for (const c of Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : []) {
      const [pair] = c.split(';')
      const eq = pair!.indexOf('=')
      const name = pair!.slice(0, eq)
      const value = pair!.slice(eq + 1)
      if (value === '' || /max-age=0/i.test(c) || /expires=Thu, 01 Jan 1970/i.test(c))
        this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
    const text = await res.body.text()
    let json: Record<string, unknown> = {}
    try {
      json = text ? JSON.parse(text) : {}
    } catch {
      // not JSON (a downloaded file)
    }
    return { status: res.statusCode, headers: res.headers, json: json as Record<string, any>, text }
  }
}
