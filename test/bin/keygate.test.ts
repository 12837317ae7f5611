/**
 * bin/keygate.ts's argument handling as a real child process: a kid is base64url, so about one key in 64 has
 * a kid starting with `-`; revoking it is the emergency path and must not need `--`.
 */
import { execFile } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import type { KeySetDocument } from '../../services/issuer/keys/key-document.js'
import { issuerFixture, tempDir } from '../services/issuer/fixtures.js'

const ROOT = join(import.meta.dirname, '..', '..')

function keygate(args: string[], env: Record<string, string>) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      ['--conditions=keygate-source', '--import', 'tsx', 'bin/keygate.ts', ...args],
      { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, timeout: 60_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr })
      },
    )
  })
}

t.test('keys revoke takes a kid that starts with "-", with or without "--"', async (t) => {
  const dir = tempDir(t)
  const env = { KEYS_DIR: join(dir, 'keys'), DATA_DIR: join(dir, 'data'), LOG_LEVEL: 'silent' }
  // The issuer generates its key pair on first start; closed again before the command line touches it.
  const { app } = await issuerFixture(t, { dir, env })
  await app.close()
  // Thumbprints cannot be chosen, so two of the generated keys get kids as one in 64 real ones look: the
  // command line and the key set only ever look a kid up exactly, never recompute it.
  const file = join(dir, 'keys', 'keyset.json')
  const doc = JSON.parse(readFileSync(file, 'utf8')) as KeySetDocument
  t.equal(doc.keys.length, 2, 'an active and a next key')
  const [first, second] = doc.keys.map((k) => {
    k.kid = `-${k.kid.slice(1)}`
    return k.kid
  }) as [string, string]
  writeFileSync(file, JSON.stringify(doc))

  const next = doc.keys.find((k) => k.state === 'next')!.kid
  const revoked = await keygate(['keys', 'revoke', next], env)
  t.equal(revoked.code, 0, revoked.stderr)
  t.match(revoked.stdout, `revoked ${next}`)

  const other = next === first ? second : first
  const withSeparator = await keygate(['keys', 'revoke', '--', other], env)
  t.equal(withSeparator.code, 0, `"--" before the kid still works: ${withSeparator.stderr}`)
  t.match(withSeparator.stdout, `revoked ${other}`)
  const states = (JSON.parse(readFileSync(file, 'utf8')) as KeySetDocument).keys
    .filter((k) => k.kid === first || k.kid === second)
    .map((k) => k.state)
  t.same(states, ['revoked', 'revoked'], 'both recorded in the key set')

  const unknown = await keygate(['keys', 'revoke', '-x-unknown-kid'], env)
  t.equal(unknown.code, 1, 'an unknown kid starting with "-" is looked up, not read as an option')
  t.match(unknown.stderr, /KG_KEY_NOT_FOUND/)
  t.notMatch(unknown.stderr, /Usage:/)

  const two = await keygate(['keys', 'revoke', '-a', '-b'], env)
  t.equal(two.code, 2, 'still exactly one kid')
  t.match(two.stderr, /keys revoke needs exactly one kid/)
})

t.test(
  'one KEYGATE_CONFIG file serves every component; a key none of them knows stops the command',
  async (t) => {
    const dir = tempDir(t)
    const file = join(dir, 'keygate.json')
    const env = {
      KEYS_DIR: join(dir, 'keys'),
      DATA_DIR: join(dir, 'data'),
      LOG_LEVEL: 'silent',
      KEYGATE_CONFIG: file,
    }
    // The gateway's and files' settings in a file the issuer's command line reads: known, so accepted.
    writeFileSync(file, JSON.stringify({ GATEWAY_RATE_LIMIT: '100/1m', FILES_LINK_TTL: '30s' }))
    const listed = await keygate(['keys', 'list'], env)
    t.equal(listed.code, 0, listed.stderr)
    writeFileSync(file, JSON.stringify({ GATEWAY_RATE_LIMIT: '100/1m', ISSUER_PROT: 4001 }))
    const refused = await keygate(['keys', 'list'], env)
    t.equal(refused.code, 1)
    t.match(refused.stderr, /unknown setting ISSUER_PROT \(did you mean ISSUER_PORT\?\)/)
  },
)
