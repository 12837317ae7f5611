/**
 * Writes every component's OpenAPI document to a directory (`npm run openapi` → docs/openapi/): each
 * component is built as it would run — with throwaway keys and SQLite files, its neighbours unreached — and
 * asked for the document it serves at /openapi.json. test/openapi.test.ts checks the files are current.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { buildGateway } from '../gateway/app.js'
import { loadGatewayConfig } from '../gateway/config.js'
import { COMPONENTS, type Component } from '../lib/config.js'
import { buildFiles } from '../services/files/app.js'
import { loadFilesConfig } from '../services/files/config.js'
import { buildIssuer } from '../services/issuer/app.js'
import { loadIssuerConfig } from '../services/issuer/config.js'
import { buildOrders } from '../services/orders/app.js'
import { loadOrdersConfig } from '../services/orders/config.js'
import { buildProfile } from '../services/profile/app.js'
import { loadProfileConfig } from '../services/profile/config.js'

const BUILDERS: Record<Component, (env: Record<string, string>) => Promise<FastifyInstance>> = {
  issuer: async (env) => buildIssuer({ config: loadIssuerConfig(env) }),
  gateway: async (env) => buildGateway({ config: loadGatewayConfig(env) }),
  profile: async (env) => buildProfile({ config: loadProfileConfig(env) }),
  orders: async (env) => buildOrders({ config: loadOrdersConfig(env) }),
  files: async (env) => buildFiles({ config: loadFilesConfig(env) }),
}

/**
 * Builds `component` in a throwaway directory, hands the ready instance to `use`, then closes it.
 * @example
 * const doc = await withComponent('profile', async (app) => app.swagger())
 */
export async function withComponent<T>(
  component: Component,
  use: (app: FastifyInstance) => Promise<T>,
): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-openapi-'))
  // Neighbours on a closed port: the document does not depend on them, and nothing waits for them.
  const env = {
    DATA_DIR: join(dir, 'data'),
    KEYS_DIR: join(dir, 'keys'),
    LOG_LEVEL: 'silent',
    ISSUER_URL: 'http://127.0.0.1:9',
    REVOCATION_FEED: 'off',
  }
  const app = await BUILDERS[component](env)
  try {
    await app.ready()
    return await use(app)
  } finally {
    await app.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Every component's OpenAPI document, by component. */
export async function openApiDocuments(): Promise<Record<Component, unknown>> {
  const documents: Partial<Record<Component, unknown>> = {}
  for (const component of COMPONENTS)
    documents[component] = await withComponent(component, async (app) => app.swagger())
  return documents as Record<Component, unknown>
}

/** The file text of a document: stable, two-space JSON with a final newline. */
export function documentText(document: unknown): string {
  return `${JSON.stringify(document, null, 2)}\n`
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const out = process.argv[2] ?? 'docs/openapi'
  mkdirSync(out, { recursive: true })
  for (const [component, document] of Object.entries(await openApiDocuments())) {
    writeFileSync(join(out, `${component}.json`), documentText(document))
    console.log(`wrote ${join(out, `${component}.json`)}`)
  }
}
