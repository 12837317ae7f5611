import Fastify from 'fastify'
import t, { type Test } from 'tap'
import { registerErrorHandling } from '../../lib/errors.js'
import { operations } from '../../lib/operations.js'
import { createLogger, serverOptions } from '../../lib/server.js'

async function build(t: Test) {
  const app = Fastify(serverOptions({ logger: createLogger({ name: 'test', level: 'silent' }) }))
  registerErrorHandling(app)
  await app.register(operations, { component: 'test' })
  // A check added while the instance loads, as the services add their store's.
  app.register(async (instance) => {
    instance.readiness.add('store', () => true)
  })
  app.get('/work', async () => ({ ok: true }))
  t.teardown(() => app.close())
  return app
}

t.test('the public instance answers /healthz only: /readyz and /metrics are not there', async (t) => {
  const app = await build(t)
  const health = await app.inject('/healthz')
  t.equal(health.statusCode, 200)
  t.same(health.json(), { status: 'ok' })
  for (const path of ['/readyz', '/metrics', '/readyz?verbose=1', '/metrics/']) {
    const res = await app.inject(path)
    t.equal(res.statusCode, 404, `${path} is not served on the public instance`)
    t.match(res.json(), { code: 'KG_NOT_FOUND' })
    t.notMatch(res.body, /process_cpu|checks/, 'and says nothing about the process')
  }
})

t.test('the ops instance serves /healthz, /readyz and /metrics of the instance it belongs to', async (t) => {
  const app = await build(t)
  // Before the instance loaded: the ops listener waits for it, so the checks it adds while loading count.
  const ready = await app.operations.inject('/readyz')
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'ready', ready: true, checks: { store: true } })
  await app.inject('/work')
  const metrics = await app.operations.inject('/metrics')
  t.equal(metrics.statusCode, 200)
  t.match(metrics.headers['content-type'], /^text\/plain/)
  t.match(metrics.body, /keygate_http_request_duration_seconds_count\{[^}]*route="\/work"[^}]*\} 1/)
  t.match(metrics.body, /component="test"/)
  t.equal((await app.operations.inject('/healthz')).statusCode, 200)
  const other = await app.operations.inject('/work')
  t.equal(other.statusCode, 404, 'the ops listener serves nothing of the public API')
  t.match(other.json(), { code: 'KG_NOT_FOUND' })
})

t.test('/readyz reports a failing check, and not ready from the moment the instance closes', async (t) => {
  const app = await build(t)
  // Hold the close after its first step, as in-flight requests would while they drain.
  let release!: () => void
  const draining = new Promise<void>((resolve) => (release = resolve))
  let closingSeen!: () => void
  const seen = new Promise<void>((resolve) => (closingSeen = resolve))
  app.addHook('preClose', async () => {
    closingSeen()
    await draining
  })
  let storeUp = false
  app.readiness.add('upstream', () => (storeUp ? true : 'not connected'))
  let res = await app.operations.inject('/readyz')
  t.equal(res.statusCode, 503)
  t.match(res.json(), { status: 'not_ready', checks: { upstream: 'not connected' } })
  storeUp = true
  t.equal((await app.operations.inject('/readyz')).statusCode, 200)

  const closed = app.close()
  await seen
  res = await app.operations.inject('/readyz')
  t.equal(res.statusCode, 503, 'a balancer stops sending while the instance drains')
  t.match(res.json(), { status: 'not_ready', checks: { shutdown: 'closing' } })
  release()
  await closed
  t.notOk(app.operations.server.listening, 'the ops instance closed with it')
})
