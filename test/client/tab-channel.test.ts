import t from 'tap'
import { parseTabMessage } from '../../client/tab-channel.js'

const tokens = {
  type: 'tokens',
  accessToken: 'at',
  expiresAt: 2,
  lifetimeMs: 1,
  csrfToken: 'c',
  issuedAt: 1,
  login: false,
}

t.test('well-formed messages pass, with nothing else on them', async (t) => {
  t.same(parseTabMessage({ ...tokens, extra: 'dropped' }), tokens)
  t.same(parseTabMessage({ type: 'logout', reason: 'logout-all', at: 5 }), {
    type: 'logout',
    reason: 'logout-all',
    at: 5,
  })
})

t.test('anything else another script of the origin might post is ignored', async (t) => {
  for (const junk of [
    null,
    undefined,
    42,
    'logout',
    [],
    { type: 'unknown' },
    { ...tokens, accessToken: '' },
    { ...tokens, accessToken: 7 },
    { ...tokens, expiresAt: Number.NaN },
    { ...tokens, issuedAt: -1 },
    { ...tokens, login: 'yes' },
    { type: 'logout', reason: 'because', at: 1 },
    { type: 'logout', reason: 'logout' },
  ]) {
    t.equal(parseTabMessage(junk), undefined, JSON.stringify(junk) ?? String(junk))
  }
})
