/**
 * The `Authorization` header of an OAuth client authenticating with its secret (`client_secret_basic`), as
 * every keygate component that calls a token, introspection or exchange endpoint sends it.
 */

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
