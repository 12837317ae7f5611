/**
 * keygate as an OAuth client of an authorization server's token or introspection endpoint (orders' token
 * exchange at keygate's issuer, the issuer asking an external provider whether a token is active): a form
 * POSTed with `client_secret_basic`, the answer read up to a cap and parsed as a JSON object. What a status
 * or a field means is the caller's.
 */
import { request } from 'undici'
import { readCappedBody } from '@keygate/fastify-auth'

export interface OAuthClientCredentials {
  clientId: string
  clientSecret: string
}

export interface OAuthFormOptions {
  /** The whole exchange, connection to last byte, in milliseconds. */
  timeoutMs: number
  /** Largest answer read, in bytes. */
  maxBytes: number
}

export interface OAuthAnswer {
  status: number
  /** The answer as a JSON object; undefined when it was larger than `maxBytes` or not a JSON object. */
  json: Record<string, unknown> | undefined
}

/**
 * RFC 6749 §2.3.1: client id and secret are form-urlencoded first, then joined and Base64-encoded, so a `:`
 * or a non-ASCII character in either survives.
 * @example
 * headers.authorization = clientSecretBasic('orders', secret)
 */
export function clientSecretBasic(id: string, secret: string): string {
  const enc = (v: string) => encodeURIComponent(v).replace(/%20/g, '+')
  return `Basic ${Buffer.from(`${enc(id)}:${enc(secret)}`).toString('base64')}`
}

/**
 * POSTs `form` to `url` as the client; rejects (with undici's error) only when the endpoint cannot be
 * reached or does not answer within the timeout.
 * @example
 * const { status, json } = await postOAuthForm(url, credentials, { token }, { timeoutMs: 5000, maxBytes: 16384 })
 */
export async function postOAuthForm(
  url: string,
  credentials: OAuthClientCredentials,
  form: Record<string, string>,
  options: OAuthFormOptions,
): Promise<OAuthAnswer> {
  const res = await request(url, {
    method: 'POST',
    headers: {
      authorization: clientSecretBasic(credentials.clientId, credentials.clientSecret),
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    },
    body: new URLSearchParams(form).toString(),
    signal: AbortSignal.timeout(options.timeoutMs),
  })
  const body = await readCappedBody(res.body, options.maxBytes)
  return { status: res.statusCode, json: body === undefined ? undefined : jsonObject(body) }
}

function jsonObject(body: Buffer): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(body.toString('utf8'))
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined
  } catch {
    return undefined
  }
}
