import t from 'tap'
import { readCappedBody } from '../../../lib/auth/capped-body.js'

/** A body of `count` chunks of `size` bytes that records how many it handed out and whether it was closed. */
function body(count: number, size: number) {
  const state = { pulled: 0, closed: false }
  async function* chunks() {
    try {
      for (let i = 0; i < count; i++) {
        state.pulled++
        yield Buffer.alloc(size, 97 + i)
      }
    } finally {
      state.closed = true
    }
  }
  return { chunks: chunks(), state }
}

t.test('a body within the cap is read whole', async (t) => {
  const { chunks, state } = body(3, 4)
  t.equal((await readCappedBody(chunks, 100))?.toString(), 'aaaabbbbcccc')
  t.equal(state.pulled, 3)
  const exact = body(3, 4)
  t.equal((await readCappedBody(exact.chunks, 12))?.length, 12, 'exactly the cap is within it')
  t.equal((await readCappedBody(body(0, 4).chunks, 0))?.length, 0, 'an empty body is a body')
})

t.test('a body past the cap is refused without being read to its end', async (t) => {
  const { chunks, state } = body(1000, 4)
  t.equal(await readCappedBody(chunks, 10), undefined)
  t.equal(state.pulled, 3, 'reading stopped at the chunk that crossed the cap')
  t.ok(state.closed, 'and the body was closed')
  t.equal(await readCappedBody(body(3, 4).chunks, 11), undefined, 'one byte over is over')
})
