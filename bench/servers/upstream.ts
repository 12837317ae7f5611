/**
 * The upstream every benchmarked proxy forwards to: a tiny Fastify JSON answer on every GET path, no logging.
 */
import Fastify from 'fastify'
import { announceListening, portSetting } from './announce.js'

const app = Fastify({ logger: false })
app.get('/*', async () => ({ hello: 'world' }))
announceListening(await app.listen({ host: '127.0.0.1', port: portSetting() }))
