import t from 'tap'
import { displayNameFrom } from '../../../services/profile/display-name.js'

t.test('display names are trimmed, 1..64 characters, on one line', async (t) => {
  t.equal(displayNameFrom('  Alice  '), 'Alice')
  t.equal(displayNameFrom('Zoë'), 'Zoë')
  t.equal(displayNameFrom('Zoe\u0308'), 'Zoë', 'normalised to NFC')
  t.equal(displayNameFrom('x'.repeat(64)), 'x'.repeat(64))
  t.equal(displayNameFrom(` ${'x'.repeat(64)}\t`), 'x'.repeat(64), 'the limit applies after trimming')
  t.equal(displayNameFrom('😀'.repeat(64)), '😀'.repeat(64), 'characters, not UTF-16 units')
  t.equal(displayNameFrom('👩‍💻 Dev'), '👩‍💻 Dev', 'joiners inside emoji are fine')
  const refused = ['', '   ', 'x'.repeat(65), 'a\nb', 'a\u0007b', 'a\u0085b', 'a\u2028b', 'evil\u202Egnp.exe']
  for (const input of refused) {
    // Named with every non-ASCII character escaped: U+2028 or U+0085 in a test name would break a TAP line.
    const name = input.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
    t.throws(() => displayNameFrom(input), { code: 'KG_INVALID_REQUEST' }, name)
  }
})
