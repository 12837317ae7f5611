import { spawnSync } from 'node:child_process'
import { availableParallelism } from 'node:os'
import t from 'tap'
import { hasTaskset, pinned } from '../../bench/machine.js'
import { quantile } from '../../bench/quantiles.js'
import { refreshAge } from '../../bench/refresh-age.js'

t.test(
  'quantiles are nearest rank: the smallest sample with at least that share at or below it',
  async (t) => {
    const samples = Array.from({ length: 100 }, (_, i) => 100 - i) // 100 … 1, unsorted on purpose
    t.equal(quantile(samples, 0.5), 50)
    t.equal(quantile(samples, 0.99), 99, 'p99 of 100 samples is the 99th, not the largest')
    t.equal(quantile(samples, 1), 100)
    t.equal(quantile(samples, 0), 1)
    t.equal(quantile([7], 0.99), 7)
    t.ok(Number.isNaN(quantile([], 0.5)))
  },
)

t.test(
  'a process started unpinned from a pinned one may run on every core',
  { skip: !hasTaskset ? 'taskset is not installed' : availableParallelism() < 2 ? 'one core' : false },
  async (t) => {
    const allowed = (command: string[]) =>
      /Cpus_allowed_list:\s*(\S+)/.exec(
        spawnSync(command[0]!, command.slice(1), { encoding: 'utf8' }).stdout,
      )?.[1]
    const status = ['grep', 'Cpus_allowed_list', '/proc/self/status']
    const every = allowed(status) // this test's own cores, as the bench's before it pins itself
    // The bench pins itself to the load core; what it starts inherits that unless told otherwise.
    t.equal(allowed(['taskset', '-c', '0', ...status]), '0', 'a child inherits its parent’s core')
    t.equal(allowed(['taskset', '-c', '0', ...pinned(undefined, status)]), every)
    t.equal(allowed(['taskset', '-c', '0', ...pinned(1, status)]), '1')
  },
)

t.test('refresh-age: one session is rotated through every band (a refused rotation throws)', async (t) => {
  const bands = await refreshAge(200)
  t.same(
    bands.map(({ from, to }) => [from, to]),
    [
      [0, 2],
      [2, 20],
      [20, 100],
      [100, 200],
    ],
  )
})
