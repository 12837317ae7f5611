import { Histogram, type Metric, Registry } from 'prom-client'
import t from 'tap'
import { REQUEST_DURATION_BUCKETS_S, RequestDurations } from '../../lib/metric-cells.js'

/** Exposition text with each line's labels sorted and the lines sorted: order carries no meaning. */
const normalised = (text: string) =>
  text
    .split('\n')
    .map((l) => l.replace(/\{([^}]*)\}/, (_m, inner: string) => `{${inner.split(',').sort().join(',')}}`))
    .sort()
    .join('\n')

t.test('RequestDurations exposes what a prom-client histogram would', async (t) => {
  const theirs = new Registry()
  const ours = new Registry()
  for (const r of [theirs, ours]) r.setDefaultLabels({ component: 'gateway' })
  const reference = new Histogram({
    name: 'keygate_http_request_duration_seconds',
    help: 'HTTP requests by route, method and status',
    labelNames: ['route', 'method', 'status'],
    buckets: REQUEST_DURATION_BUCKETS_S,
    registers: [theirs],
  })
  const durations = new RequestDurations(REQUEST_DURATION_BUCKETS_S)
  ours.registerMetric(durations as unknown as Metric)
  const observations = [
    ['/x', 'GET', 200, 0.0004],
    ['/x', 'GET', 200, 0.001],
    ['/x', 'POST', 401, 0.01],
    ['unmatched', 'GET', 404, 0.3],
    ['/x', 'GET', 200, 20],
    ['/y', 'GET', 200, 0.005],
  ] as const
  for (const [route, method, status, seconds] of observations) {
    reference.observe({ route, method, status }, seconds)
    durations.observe(route, method, status, seconds)
  }
  t.equal(normalised(await ours.metrics()), normalised(await theirs.metrics()))
  durations.reset()
  t.notMatch(await ours.metrics(), /_count/, 'reset empties it')
})
