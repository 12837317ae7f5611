/**
 * Every component's OpenAPI document: valid OpenAPI 3.1 (a maintained validator), served at /openapi.json,
 * listing every route the instance registered, with the catalogue's error body on every operation; and
 * docs/openapi/ holds the documents as they are generated now (`npm run openapi`).
 */
import { readFileSync } from 'node:fs'
import { Validator } from '@seriousme/openapi-schema-validator'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { documentText, withComponent } from '../bin/openapi.js'
import { COMPONENTS } from '../lib/config.js'
import { DEMO_ROUTES } from '../gateway/static-app.js'
import { OPENAPI_PATH } from '../lib/openapi.js'

const ROOT = new URL('../', import.meta.url).pathname
const OPENAPI_METHODS = ['GET', 'PUT', 'POST', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE']

interface Operation {
  responses?: Record<string, { description?: string; content?: Record<string, { schema?: unknown }> }>
}
type Document = { openapi: string; paths: Record<string, Record<string, Operation>> }

/**
 * Every (method, path) the instance answers, read from Fastify's own route tree (`printRoutes`, one node a
 * line, children indented under their parent), written the way OpenAPI writes paths (`:id` → `{id}`).
 * HEAD is left out: Fastify adds it to every GET by itself.
 */
function registeredRoutes(app: FastifyInstance): string[] {
  const routes: string[] = []
  const stack: string[] = []
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^([│ ]*)[├└]── (\S*)(?: \(([^)]*)\))?$/.exec(line)
    if (!m) continue
    const depth = m[1]!.length / 4
    stack.length = depth
    // A top-level catch-all prints as `*`, without the root `/` it hangs from.
    stack.push(depth === 0 && !m[2]!.startsWith('/') ? `/${m[2]!}` : m[2]!)
    const path = stack
      .join('')
      .replace(/:([A-Za-z0-9_]+)/g, '{$1}')
      .replace(/\*$/, '{*}')
    for (const method of (m[3] ?? '').split(', ').filter(Boolean)) {
      if (method !== 'HEAD') routes.push(`${method} ${path}`)
    }
  }
  return routes
}

for (const component of COMPONENTS) {
  t.test(`${component}: a valid OpenAPI 3.1 document with every route and the error body`, async (t) => {
    await withComponent(component, async (app) => {
      const served = await app.inject({ url: OPENAPI_PATH })
      t.equal(served.statusCode, 200, `${OPENAPI_PATH} is served`)
      const document = served.json<Document>()
      t.equal(document.openapi, '3.1.0')
      const result = await new Validator().validate(
        document as unknown as Parameters<Validator['validate']>[0],
      )
      t.ok(result.valid, `valid: ${JSON.stringify(result.errors ?? [])}`)

      const documented = Object.entries(document.paths).flatMap(([path, item]) =>
        Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`),
      )
      const missing = registeredRoutes(app).filter(
        (route) =>
          !documented.includes(route) &&
          route !== `GET ${OPENAPI_PATH}` &&
          // The demo's pages, when client/dist is built: not the API, hidden from the document.
          !(DEMO_ROUTES as readonly string[]).includes(route) &&
          // Methods OpenAPI has no field for (the gateway proxies QUERY too) cannot appear.
          OPENAPI_METHODS.includes(route.split(' ')[0]!),
      )
      t.same(missing, [], 'every registered route is documented')
      t.ok(documented.length > 1)

      for (const [path, item] of Object.entries(document.paths)) {
        for (const [method, operation] of Object.entries(item)) {
          const errors = Object.entries(operation.responses ?? {}).filter(([status]) => /^[45]/.test(status))
          t.ok(
            errors.some(([, answer]) => answer.content?.['application/json']?.schema !== undefined),
            `${method.toUpperCase()} ${path} documents its error body`,
          )
        }
      }
      // Every answer is described: a schema per media type, or, for one without a body (204, RFC 7009's
      // empty 200, a 304), a description of its own rather than @fastify/swagger's placeholder.
      for (const [path, item] of Object.entries(document.paths)) {
        for (const [method, operation] of Object.entries(item)) {
          const answers = Object.entries(operation.responses ?? {}).filter(([status]) => /^[23]/.test(status))
          const described =
            answers.length > 0 &&
            answers.every(
              ([, answer]) =>
                answer.content !== undefined ||
                (answer.description !== undefined && answer.description !== 'Default Response'),
            )
          t.ok(described, `${method.toUpperCase()} ${path} declares its answer's schema`)
        }
      }
      t.equal(
        readFileSync(`${ROOT}docs/openapi/${component}.json`, 'utf8'),
        documentText(document),
        `docs/openapi/${component}.json is current (npm run openapi)`,
      )
    })
  })
}
