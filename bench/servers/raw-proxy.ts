/**
 * The floor of a Node proxy hop: `node:http` in front, an undici pool behind, nothing else — no framework, no
 * authentication, no header hygiene, no logging, no metrics. Issue 18 cites such a proxy at about 1.8× the
 * bare reply-from one; the bench measures it beside the others, so the gateway's distance to what Node
 * itself costs is read in the same run, not assumed.
 */
import { createServer } from 'node:http'
import { Pool } from 'undici'
import { announceListening, portSetting } from './announce.js'

const upstream = process.env.UPSTREAM_URL
if (!upstream) throw new Error('bench raw-proxy: UPSTREAM_URL is required')
const pool = new Pool(upstream, { connections: 128, pipelining: 1 })

const server = createServer((req, res) => {
  pool
    .request({ path: req.url!, method: 'GET', headers: { 'x-forwarded-for': req.socket.remoteAddress! } })
    .then(async (answer) => {
      const body = Buffer.from(await answer.body.arrayBuffer())
      res.writeHead(answer.statusCode, {
        'content-type': answer.headers['content-type'],
        'content-length': body.length,
      })
      res.end(body)
    })
    .catch(() => {
      res.statusCode = 502
      res.end()
    })
})
server.listen(portSetting(), '127.0.0.1', () => {
  const { port } = server.address() as { port: number }
  announceListening(`http://127.0.0.1:${port}`)
})
