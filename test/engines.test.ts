/**
 * keygate says which Node.js it runs on (`engines` in package.json); every package `npm ci` installs must
 * say the same, or `npm ci` warns and the package may use what that Node.js lacks (cookie@2 wanted Node 22).
 */
import { readFileSync } from 'node:fs'
import semver from 'semver'
import t from 'tap'

const ROOT = new URL('../', import.meta.url)
const manifest = JSON.parse(readFileSync(new URL('package.json', ROOT), 'utf8')) as {
  engines: { node: string }
}
const lock = JSON.parse(readFileSync(new URL('package-lock.json', ROOT), 'utf8')) as {
  packages: Record<string, { version?: string; engines?: { node?: string } | string[] }>
}

t.test('every installed package accepts the oldest Node.js keygate supports', async (t) => {
  const oldest = semver.minVersion(manifest.engines.node)
  if (oldest === null) throw new Error(`engines.node is not a range: ${manifest.engines.node}`)
  const refusing = Object.entries(lock.packages)
    .filter(([path, entry]) => {
      const range = Array.isArray(entry.engines) ? undefined : entry.engines?.node
      return path !== '' && range !== undefined && !semver.satisfies(oldest, range)
    })
    .map(([path, entry]) => `${path}@${entry.version}`)
  t.same(refusing, [], `packages that refuse Node ${oldest.version}`)
})
