/**
 * Issue 13's slow-client attack with real sockets and real processes: 200 connections from 127.0.0.2 trickle
 * request bodies (a byte a second) at `POST /auth/login` through the gateway in front of the issuer, and at an
 * authenticated `PUT /api/files/…`, reconnecting whenever the gateway closes one. Users on 127.0.0.1 log in,
 * read their profile and upload files all along: every one of their requests must succeed. No slow request
 * may get through; the gateway answers them 408 (the body did not arrive in time) or 429 (over the
 * per-client cap). Timings are not asserted (bench/slow-clients.ts measures them); a legitimate request that
 * stalls past the bench's own timeout (20 s) counts as a failure.
 */
import t from 'tap'
import { runSlowClientAttack } from '../../bench/slow-clients.js'
import { startProcesses } from '../helpers/processes.js'

const SOCKETS = 200
const DURATION_MS = 15_000
const USERS = 3

t.test(
  '200 slow-body sockets from one address: everyone else keeps logging in and calling the API',
  async (t) => {
    const system = await startProcesses({
      components: ['issuer', 'gateway', 'profile', 'files'],
      env: {
        // The route rate limits would refuse part of the attack themselves: off, to test what this is about.
        GATEWAY_RATE_LIMIT: '1000000/1m',
        // Shorter than the default 10 s, so that every slow socket is cut off at least once in the run.
        GATEWAY_BODY_TIMEOUT: '3s',
      },
    })
    t.teardown(() => system.stop())

    const report = await runSlowClientAttack({
      gatewayUrl: system.urls.gateway,
      sockets: SOCKETS,
      durationMs: DURATION_MS,
      users: USERS,
    })
    t.comment(JSON.stringify(report))

    t.same(report.login.failures, {}, 'no login failed')
    t.same(report.api.failures, {}, 'no API call failed')
    t.ok(report.login.ok >= USERS * 2, `logins kept succeeding (${report.login.ok})`)
    t.ok(report.api.ok >= USERS * 4, `API calls kept succeeding (${report.api.ok})`)

    t.equal(report.attackSucceeded, 0, 'no slow request got through')
    t.ok(report.attackConnections > SOCKETS, 'the gateway closed slow connections and the attacker came back')
    t.ok((report.attackAnswers['408 KG_REQUEST_TIMEOUT'] ?? 0) > 0, 'slow bodies are cut off with 408')
    t.ok((report.attackAnswers['429 KG_CLIENT_BUSY'] ?? 0) > 0, 'the rest of one client is over its cap: 429')
    const unexpected = Object.keys(report.attackAnswers).filter(
      (k) => k !== '408 KG_REQUEST_TIMEOUT' && k !== '429 KG_CLIENT_BUSY' && k !== 'closed',
    )
    t.same(unexpected, [], 'the attack got nothing but 408 and 429')
  },
)
