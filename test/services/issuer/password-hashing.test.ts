import t from 'tap'
import { PasswordHashing } from '../../../services/issuer/password-hashing.js'

/** Hash and verify functions that finish only when the test says so, recording what runs. */
function controlled() {
  const running: string[] = []
  const finishers = new Map<string, () => void>()
  let most = 0
  const work = (name: string) =>
    new Promise<void>((resolve) => {
      running.push(name)
      most = Math.max(most, running.length)
      finishers.set(name, () => {
        running.splice(running.indexOf(name), 1)
        resolve()
      })
    })
  return {
    running,
    most: () => most,
    finish: async (name: string) => {
      finishers.get(name)!()
      // Let the queue hand the slot on.
      for (let i = 0; i < 5; i++) await Promise.resolve()
    },
    hash: async (password: string) => {
      await work(password)
      return `hash of ${password}`
    },
    verify: async (_hash: string | undefined, password: string) => {
      await work(password)
      return true
    },
  }
}

const settle = () => new Promise((resolve) => setImmediate(resolve))

t.test('a flood of new hashes queues; a login check always has a slot of its own', async (t) => {
  const work = controlled()
  const hashing = new PasswordHashing({ concurrency: 2, hash: work.hash, verify: work.verify })
  const registrations = Array.from({ length: 10 }, (_, i) => hashing.hash(`register ${i}`))
  await settle()
  t.same(work.running, ['register 0'], 'new hashes take all slots but one')
  t.same(hashing.waiting, { checks: 0, hashes: 9 })

  const login = hashing.verify('stored', 'login')
  await settle()
  t.same(work.running, ['register 0', 'login'], 'the login check starts at once, past nine queued hashes')
  await work.finish('login')
  t.equal(await login, true)

  for (let i = 0; i < 10; i++) await work.finish(`register ${i}`)
  t.same(
    await Promise.all(registrations),
    Array.from({ length: 10 }, (_, i) => `hash of register ${i}`),
  )
  t.equal(work.most(), 2, 'never more than the concurrency at once')
})

t.test('waiting checks go before waiting hashes', async (t) => {
  const work = controlled()
  const hashing = new PasswordHashing({ concurrency: 3, hash: work.hash, verify: work.verify })
  const all: Array<Promise<unknown>> = [
    hashing.hash('h1'),
    hashing.hash('h2'),
    hashing.hash('h3'),
    hashing.hash('h4'),
  ]
  await settle()
  t.same(work.running, ['h1', 'h2'])
  all.push(hashing.verify('x', 'c1'), hashing.verify('x', 'c2'), hashing.verify('x', 'c3'))
  await settle()
  t.same(work.running, ['h1', 'h2', 'c1'])
  await work.finish('h1')
  t.same(work.running, ['h2', 'c1', 'c2'], 'the freed slot goes to the waiting check, not the hash')
  await work.finish('c1')
  t.same(work.running, ['h2', 'c2', 'c3'])
  await work.finish('c2')
  t.same(work.running, ['h2', 'c3', 'h3'], 'then hashes, as long as one slot stays for checks')
  await work.finish('h2')
  t.same(work.running, ['c3', 'h3', 'h4'])
  for (const name of ['c3', 'h3', 'h4']) await work.finish(name)
  await Promise.all(all)
  t.equal(work.most(), 3)
})

t.test('a failing hash frees its slot', async (t) => {
  let calls = 0
  const hashing = new PasswordHashing({
    concurrency: 2,
    hash: async () => {
      calls++
      throw new Error('argon2 failed')
    },
  })
  await t.rejects(hashing.hash('a'), /argon2 failed/)
  await t.rejects(hashing.hash('b'), /argon2 failed/)
  t.equal(calls, 2)
  t.same(hashing.waiting, { checks: 0, hashes: 0 })
})
