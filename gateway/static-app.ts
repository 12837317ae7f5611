/**
 * The demo app (client/, built into client/dist by `npm run build:client`), served by the gateway itself so
 * that it shares the gateway's origin: the issuer's cookies (`kg_refresh` on `/auth`, `kg_csrf` on `/`) are
 * then first-party and same-origin, and no CORS is involved.
 *
 * `GET /` is the page; `GET /app/<file>` serves client/dist (the client library at `/app/index.js`, the demo
 * under `/app/demo/`). `/app` is not a prefix the built-in route table proxies. The files are read once at
 * start and served from memory by exact name, so no request path ever reaches the file system. Nothing is
 * served when the route table claims `/` or `/app` (a route file with a catch-all `/` keeps its meaning), nor
 * when client/dist has not been built; `/` then answers the proxy's 404 as before.
 */
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { dirname, join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { KeygateError } from '../lib/errors.js'
import { noContent } from '../lib/openapi.js'
import type { RouteTable } from './route-table.js'

/** Where the built client's files are served. */
export const APP_ASSETS_PREFIX = '/app/'
/** The page served at `/`, inside client/dist. */
const PAGE_FILE = 'demo/index.html'

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
}

/**
 * The page may load its own scripts, styles and images, call its own origin, and nothing else; Trusted Types
 * make every HTML-from-string sink throw, so a display name or a file name can never become markup.
 */
export const DEMO_CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join('; ')

interface Asset {
  body: Buffer
  contentType: string
  etag: string
}

export interface StaticAppOptions {
  table: RouteTable
  /** The built client; default client/dist in the package. */
  dir?: string
}

const NotModified = noContent('Not modified: the If-None-Match ETag is current')
/**
 * The demo's routes as OpenAPI would name them. They are pages, not the API, and exist only when client/dist is
 * built, so they are hidden from the gateway's OpenAPI document (which must not depend on a build).
 */
export const DEMO_ROUTES = ['GET /', `GET ${APP_ASSETS_PREFIX}{*}`] as const

const PageSchema = {
  hide: true,
  response: {
    200: {
      description: 'The demo page',
      content: { 'text/html': { schema: { type: 'string' } } },
    },
    304: NotModified,
  },
} as const
const AssetSchema = {
  hide: true,
  response: {
    200: {
      description:
        "One of the demo's files (script, source map, style sheet, SVG), with its own Content-Type",
      content: { '*/*': { schema: { type: 'string', format: 'binary' } } },
    },
    304: NotModified,
  },
} as const

/** Registers `/` and `/app/*` when the demo is built and the route table leaves those paths alone. */
export async function staticApp(app: FastifyInstance, options: StaticAppOptions): Promise<void> {
  const dir = options.dir ?? clientDistDir()
  const claimedBy = options.table.match('/') ?? options.table.match(`${APP_ASSETS_PREFIX}index.js`)
  if (claimedBy) {
    app.log.info({ prefix: claimedBy.prefix }, 'demo app not served: the route table proxies / or /app')
    return
  }
  const assets = dir === undefined ? undefined : await loadAssets(dir)
  const page = assets?.get(PAGE_FILE)
  if (!assets || !page) {
    app.log.warn('demo app not served: client/dist is not built (npm run build:client)')
    return
  }

  app.get('/', { logLevel: 'warn', schema: PageSchema }, async (request, reply) => {
    reply
      .header('content-security-policy', DEMO_CONTENT_SECURITY_POLICY)
      .header('x-frame-options', 'DENY')
      .header('referrer-policy', 'no-referrer')
    return send(request, reply, page)
  })
  app.get(`${APP_ASSETS_PREFIX}*`, { logLevel: 'warn', schema: AssetSchema }, async (request, reply) => {
    const asset = assets.get((request.params as { '*': string })['*'])
    if (!asset) throw new KeygateError('KG_NOT_FOUND')
    return send(request, reply, asset)
  })
}

function send(request: FastifyRequest, reply: FastifyReply, asset: Asset): FastifyReply {
  // Names are not content-hashed: browsers revalidate every time, and mostly get a 304.
  reply
    .header('cache-control', 'no-cache')
    .header('etag', asset.etag)
    .header('x-content-type-options', 'nosniff')
  if (request.headers['if-none-match'] === asset.etag) return reply.code(304).send()
  return reply.type(asset.contentType).send(asset.body)
}

/** Every servable file under `dir`, by its path relative to `dir` with `/` separators. */
async function loadAssets(dir: string): Promise<Map<string, Asset>> {
  const assets = new Map<string, Asset>()
  if (!existsSync(dir)) return assets
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    const extension = /\.[a-z]+$/.exec(entry.name)?.[0] ?? ''
    const contentType = CONTENT_TYPES[extension]
    if (!entry.isFile() || contentType === undefined) continue
    const file = join(entry.parentPath, entry.name)
    const body = await readFile(file)
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`
    assets.set(relative(dir, file).split(sep).join('/'), { body, contentType, etag })
  }
  return assets
}

/** client/dist of the package this file belongs to (run from source or from dist/), if it can be found. */
/** Whether the demo page is built, so a gateway with the default route table serves it at `/`. */
export function demoBuilt(dir = clientDistDir()): boolean {
  return dir !== undefined && existsSync(join(dir, PAGE_FILE))
}

function clientDistDir(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return join(dir, 'client', 'dist')
    const parent = dirname(dir)
    if (parent === dir) return undefined
    dir = parent
  }
}
