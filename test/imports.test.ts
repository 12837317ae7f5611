/**
 * Imports run one way: no cycle anywhere in the source (type-only imports count: an interface that imports its
 * implementation is a cycle too), and the layers hold — `bin/` → `gateway/`, `services/*` → `lib/`, no
 * component imports another. The two workspace packages, `lib/auth` (@keygate/fastify-auth) and `client/`
 * (@keygate/client, a browser package), import nothing outside their folder, and everything else reaches them
 * only by package name through an entry of their `exports` map, as an app outside the repository would; only
 * the issuer takes the client's protocol names.
 */
import { parseCircular, parseDependencyTree } from 'dpdm'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const root = fileURLToPath(new URL('..', import.meta.url))
const LAYERS = ['lib', 'gateway', 'services', 'bin', 'client']
const SOURCE = LAYERS.map((layer) => `${layer}/**/*.ts`)
const isSource = (file: string) => LAYERS.includes(file.split('/')[0]!)

const tree = await parseDependencyTree(SOURCE, {
  context: root,
  tsconfig: `${root}tsconfig.json`,
  transform: false,
  skipDynamicImports: false,
})

/** The workspace packages by folder, and who besides themselves may import them. */
const PACKAGES: Record<string, { importers: (from: string) => boolean }> = {
  'lib/auth': { importers: (from) => from !== 'client' },
  // The browser client's protocol names (the CSRF cookie and header): the issuer that sets them takes them from
  // the client's `./csrf-token` entry, since the client, a standalone browser package, cannot import lib/.
  client: { importers: (from) => from === 'services/issuer' },
}

/** Each package's public entries: import specifier → the source file its `keygate-source` condition names. */
const ENTRIES = new Map<string, string>()
for (const folder of Object.keys(PACKAGES)) {
  const manifest = JSON.parse(readFileSync(`${root}${folder}/package.json`, 'utf8')) as {
    name: string
    exports: Record<string, string | Record<string, string>>
  }
  for (const [subpath, targets] of Object.entries(manifest.exports)) {
    if (typeof targets === 'string') continue
    ENTRIES.set(`${manifest.name}${subpath.slice(1)}`, `${folder}/${targets['keygate-source']!.slice(2)}`)
  }
}

/** `gateway`, `services/issuer`, `lib`, `lib/auth`, `bin`, `client`: the component (or layer) of a source file. */
function componentOf(file: string): string {
  const [top, second] = file.split('/')
  if (top === 'services' || `${top}/${second}` in PACKAGES) return `${top}/${second}`
  return top!
}

/** Whether a file in component `from` may import `dependency` (in component `to`) with specifier `request`. */
function mayImport(from: string, to: string, dependency: string, request: string): boolean {
  if (from === to) return true
  if (from in PACKAGES) return false
  if (to in PACKAGES) return PACKAGES[to]!.importers(from) && ENTRIES.get(request) === dependency
  if (to === 'lib') return true
  return from === 'bin' && (to === 'gateway' || to.startsWith('services/'))
}

t.test('parses the source tree', async (t) => {
  t.ok(
    Object.keys(tree).some((file) => file.startsWith('services/issuer/')),
    'issuer files are read',
  )
  t.ok(
    Object.keys(tree).some((file) => file.startsWith('gateway/')),
    'gateway files are read',
  )
})

t.test('no import cycle', async (t) => {
  const cycles = parseCircular(tree, false)
  t.same(
    cycles.map((cycle) => cycle.join(' -> ')),
    [],
    'every import chain ends',
  )
})

t.test('every package entry names a source file', async (t) => {
  t.ok(ENTRIES.get('@keygate/fastify-auth') === 'lib/auth/index.ts', 'the plugin')
  t.ok(ENTRIES.get('@keygate/client/csrf-token') === 'client/csrf-token.ts', "the client's protocol names")
  for (const [request, file] of ENTRIES) t.ok(file in tree, `${request} -> ${file} is read`)
})

t.test(
  'layers: bin -> gateway, services -> lib; no component imports another; packages by name',
  async (t) => {
    const crossings: string[] = []
    for (const [file, dependencies] of Object.entries(tree)) {
      if (!isSource(file) || dependencies === null) continue
      for (const dependency of dependencies) {
        if (dependency.id === null || !isSource(dependency.id)) continue
        const from = componentOf(file)
        const to = componentOf(dependency.id)
        if (!mayImport(from, to, dependency.id, dependency.request)) {
          crossings.push(`${file} -> ${dependency.request}`)
        }
      }
    }
    t.same(crossings, [], 'imports cross only downwards')
  },
)
