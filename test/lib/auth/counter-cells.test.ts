/**
 * lib/auth/counter-cells.ts: counting on the request path into cells that reach a prom-client counter at scrape.
 */
import { Counter, Registry } from 'prom-client'
import t from 'tap'
import { CounterCells, KeyedCells } from '../../../lib/auth/counter-cells.js'

t.test('CounterCells and KeyedCells reach the counter at each scrape, a series per label set', async (t) => {
  const registry = new Registry()
  const cells = new CounterCells<'route' | 'outcome'>()
  new Counter({
    name: 'requests_total',
    help: 'h',
    labelNames: ['route', 'outcome'],
    registers: [registry],
    collect() {
      cells.flush(this)
    },
  })
  const refused = cells.cell({ route: '/a', outcome: 'refused' })
  const proxied = new KeyedCells(cells, (route: { prefix: string }) => ({
    route: route.prefix,
    outcome: 'proxied',
  }))
  const a = { prefix: '/a' }
  const b = { prefix: '/b' }
  proxied.inc(a)
  proxied.inc(a)
  proxied.inc(b)
  refused.inc()
  const values = async () =>
    Object.fromEntries(
      (await registry.getSingleMetric('requests_total')!.get()).values.map((v) => [
        `${v.labels.route} ${v.labels.outcome}`,
        v.value,
      ]),
    )
  t.same(await values(), { '/a proxied': 2, '/b proxied': 1, '/a refused': 1 })
  proxied.inc(a)
  t.same(
    await values(),
    { '/a proxied': 3, '/b proxied': 1, '/a refused': 1 },
    'flushed counts are not added twice',
  )
})
