/**
 * Builds the browser client and the demo into client/dist: TypeScript compiled by tsc with
 * client/tsconfig.json (ES modules with relative `.js` imports, which browsers load as they are: no bundler),
 * then the demo's static files copied beside its script. The gateway serves the result (gateway/static-app.ts).
 *
 * Run by `npm run build:client` (and so by `npm start`); the browser tests call `buildClient()` themselves.
 */
import { execFile } from 'node:child_process'
import { copyFile, mkdir, readdir } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const CLIENT_DIR = fileURLToPath(new URL('.', import.meta.url))
/** Where the build goes. */
export const CLIENT_DIST_DIR = fileURLToPath(new URL('dist/', import.meta.url))
/** The demo's files that are not TypeScript. */
const STATIC_FILE = /\.(html|css|svg)$/

/** Compiles client/ into client/dist and copies the demo's static files. */
export async function buildClient(): Promise<void> {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
  try {
    await promisify(execFile)(process.execPath, [tsc, '-p', `${CLIENT_DIR}tsconfig.json`], {
      cwd: CLIENT_DIR,
    })
  } catch (err) {
    const { stdout = '', stderr = '' } = err as { stdout?: string; stderr?: string }
    throw new Error(`build:client: tsc failed\n${stdout}${stderr}`)
  }
  await mkdir(`${CLIENT_DIST_DIR}demo`, { recursive: true })
  for (const name of await readdir(`${CLIENT_DIR}demo`)) {
    if (STATIC_FILE.test(name)) await copyFile(`${CLIENT_DIR}demo/${name}`, `${CLIENT_DIST_DIR}demo/${name}`)
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  buildClient().then(
    () => process.stdout.write(`build:client: built ${CLIENT_DIST_DIR}\n`),
    (err: Error) => {
      console.error(err.message)
      process.exitCode = 1
    },
  )
}
