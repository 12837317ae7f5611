/**
 * What a typical user builds instead of keygate: Express 5, express-jwt (jsonwebtoken, one synchronous RSA
 * verification per request, no memory of verified tokens), jwks-rsa (keys cached, refetched on an unknown
 * kid), and http-proxy-middleware with a keep-alive agent (without one it opens a connection per request and
 * runs at half the speed). It checks what keygate checks where the libraries can: RS256 only, issuer,
 * audience, expiry.
 */
import { Agent } from 'node:http'
import express from 'express'
import { expressjwt } from 'express-jwt'
import { createProxyMiddleware } from 'http-proxy-middleware'
import jwksRsa from 'jwks-rsa'
import { announceListening, portSetting } from './announce.js'

/** Pooled connections to the upstream, as many as keygate's pool allows by default. */
const UPSTREAM_SOCKETS = 128

const upstream = process.env.UPSTREAM_URL
const jwksUri = process.env.JWKS_URI
const issuer = process.env.TOKEN_ISSUER
const audience = process.env.TOKEN_AUDIENCE
if (!upstream || !jwksUri || !issuer || !audience) {
  throw new Error('bench express-stack: UPSTREAM_URL, JWKS_URI, TOKEN_ISSUER and TOKEN_AUDIENCE are required')
}

const app = express()
app.disable('x-powered-by')
app.use(
  expressjwt({
    secret: jwksRsa.expressJwtSecret({ jwksUri, cache: true, rateLimit: true }) as never,
    algorithms: ['RS256'],
    issuer,
    audience,
  }),
)
app.use(
  createProxyMiddleware({
    target: upstream,
    agent: new Agent({ keepAlive: true, maxSockets: UPSTREAM_SOCKETS }),
  }),
)
app.use((err: Error & { status?: number }, _req: express.Request, res: express.Response, _next: unknown) => {
  res.status(err.status ?? 500).json({ error: err.name })
})
const server = app.listen(portSetting(), '127.0.0.1', () => {
  const address = server.address() as { port: number }
  announceListening(`http://127.0.0.1:${address.port}`)
})
