/**
 * The bare proxy: Fastify with @fastify/reply-from to UPSTREAM_URL, no authentication, no logging. What a
 * proxy hop costs before anything keygate adds.
 */
import replyFrom from '@fastify/reply-from'
import Fastify from 'fastify'
import { announceListening, portSetting } from './announce.js'

const upstream = process.env.UPSTREAM_URL
if (!upstream) throw new Error('bench reply-from: UPSTREAM_URL is required')
const app = Fastify({ logger: false })
await app.register(replyFrom, { base: upstream })
app.get('/*', (request, reply) => reply.from(request.url))
announceListening(await app.listen({ host: '127.0.0.1', port: portSetting() }))
