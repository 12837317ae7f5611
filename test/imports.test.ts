/**
 * Imports run one way: no cycle anywhere in the source (type-only imports count: an interface that imports its
 * implementation is a cycle too), and the layers hold — `bin/` → `gateway/`, `services/*` → `lib/`, no
 * component imports another, and `client/` (a browser package) imports none of them; only the issuer takes
 * the client's protocol names.
 */
import { parseCircular, parseDependencyTree } from 'dpdm'
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

/** `gateway`, `services/issuer`, `lib`, `bin`, `client`: the component (or layer) a source file belongs to. */
function componentOf(file: string): string {
  const [top, second] = file.split('/')
  return top === 'services' ? `services/${second}` : top!
}

/**
 * The browser client's own import-free module of protocol names (the CSRF cookie and header): the issuer
 * that sets them imports them from there, since the client, a standalone browser package, cannot import lib/.
 */
const CLIENT_PROTOCOL = 'client/csrf-token.ts'

/** Whether `file` (in component `from`) may import `dependency` (in component `to`). */
function mayImport(from: string, to: string, dependency: string): boolean {
  if (from === to) return true
  if (to === 'lib') return from !== 'client'
  if (dependency === CLIENT_PROTOCOL) return from === 'services/issuer'
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

t.test('layers: bin -> gateway, services -> lib; no component imports another', async (t) => {
  const crossings: string[] = []
  for (const [file, dependencies] of Object.entries(tree)) {
    if (!isSource(file) || dependencies === null) continue
    for (const dependency of dependencies) {
      if (dependency.id === null || !isSource(dependency.id)) continue
      const from = componentOf(file)
      const to = componentOf(dependency.id)
      if (!mayImport(from, to, dependency.id)) crossings.push(`${file} -> ${dependency.id}`)
    }
  }
  t.same(crossings, [], 'imports cross only downwards')
})
