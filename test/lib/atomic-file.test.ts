import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { createFileOnce, createFileOnceSync, replaceFile } from '../../lib/atomic-file.js'

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'kg-atomic-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

const mode = (path: string) => statSync(path).mode & 0o777

t.test('createFileOnce: the first writer creates the file, private, in a private directory', async (t) => {
  const dir = join(tempDir(t), 'nested')
  const file = join(dir, 'key.json')
  t.equal(await createFileOnce(file, 'first\n'), true)
  t.equal(readFileSync(file, 'utf8'), 'first\n')
  t.equal(mode(file), 0o600)
  t.equal(mode(dir), 0o700)
  t.equal(await createFileOnce(file, 'second\n'), false, 'a file already there is kept')
  t.equal(readFileSync(file, 'utf8'), 'first\n')
  t.same(readdirSync(dir), ['key.json'], 'no temporary file left behind')
})

t.test('createFileOnce: of writers racing, exactly one wins and all see its whole file', async (t) => {
  const file = join(tempDir(t), 'raced.json')
  const contents = Array.from({ length: 20 }, (_, i) => `writer ${i} `.repeat(1000))
  const won = await Promise.all(contents.map((c) => createFileOnce(file, c)))
  t.equal(won.filter(Boolean).length, 1)
  t.equal(readFileSync(file, 'utf8'), contents[won.indexOf(true)])
})

t.test('createFileOnceSync: the same, for callers that cannot wait', async (t) => {
  const dir = join(tempDir(t), 'data')
  const file = join(dir, 'feed.secret')
  t.equal(createFileOnceSync(file, 'one\n'), true)
  t.equal(createFileOnceSync(file, 'two\n'), false)
  t.equal(readFileSync(file, 'utf8'), 'one\n')
  t.equal(mode(file), 0o600)
  t.equal(mode(dir), 0o700)
  t.same(readdirSync(dir), ['feed.secret'])
})

t.test('replaceFile: the new contents replace the old in one step, with the mode asked for', async (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'keyset.json')
  await replaceFile(file, 'v1\n')
  t.equal(readFileSync(file, 'utf8'), 'v1\n', 'creates a missing file')
  t.equal(mode(file), 0o600)
  const before = statSync(file).ino
  await replaceFile(file, 'v2\n', 0o640)
  t.equal(readFileSync(file, 'utf8'), 'v2\n')
  t.equal(mode(file), 0o640)
  t.not(statSync(file).ino, before, 'a new file took the name (readers of the old one keep theirs)')
  t.same(readdirSync(dir), ['keyset.json'], 'no temporary file left behind')
})

t.test('replaceFile: a failed replacement leaves the target and no temporary file', async (t) => {
  const dir = tempDir(t)
  const target = join(dir, 'occupied')
  mkdirSync(target)
  writeFileSync(join(target, 'inside'), 'x')
  await t.rejects(replaceFile(target, 'v1\n'), 'a directory cannot be replaced by a file')
  t.same(readdirSync(dir), ['occupied'])
  await t.rejects(replaceFile(join(dir, 'missing', 'file'), 'v1\n'), { code: 'ENOENT' })
})
