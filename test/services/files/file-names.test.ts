import t from 'tap'
import {
  attachmentDisposition,
  FILE_NAME_PATTERN,
  storedContentType,
} from '../../../services/files/file-names.js'

t.test('file names: 1..128 of [A-Za-z0-9._-], never . or ..', async (t) => {
  const name = new RegExp(FILE_NAME_PATTERN)
  for (const ok of ['a', 'report.pdf', '.hidden', '...', 'a..b', 'x'.repeat(128), 'A-Z_0.9'])
    t.ok(name.test(ok), ok)
  for (const bad of ['', '.', '..', 'x'.repeat(129), 'a/b', 'a\\b', 'a b', 'é', 'a\0', '%2e', 'a"b', 'a;b']) {
    t.notOk(name.test(bad), JSON.stringify(bad))
  }
})

t.test('downloads are attachments with the validated name', async (t) => {
  t.equal(attachmentDisposition('report.pdf'), 'attachment; filename="report.pdf"')
  t.throws(() => attachmentDisposition('a"; filename*=x'), /unvalidated/)
})

t.test('content types: well-formed ones kept, none is octet-stream, malformed refused', async (t) => {
  t.equal(storedContentType(undefined), 'application/octet-stream')
  t.equal(storedContentType(''), 'application/octet-stream')
  t.equal(storedContentType('text/plain'), 'text/plain')
  t.equal(storedContentType('text/plain; charset=utf-8'), 'text/plain; charset=utf-8')
  t.equal(storedContentType('multipart/form-data; boundary="a b"'), 'multipart/form-data; boundary="a b"')
  for (const bad of [
    'text',
    'text/',
    '/plain',
    'text/plain\r\nx-evil: 1',
    'a/b; c',
    `a/${'b'.repeat(300)}`,
  ]) {
    t.equal(storedContentType(bad), undefined, JSON.stringify(bad))
  }
})
