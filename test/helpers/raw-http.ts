/**
 * HTTP/1.1 requests written byte for byte on a socket: what an attacker sends, not what a well-behaved client
 * library allows (repeated headers, any bytes in a value, no scheme checks). One request per connection.
 */
import { connect } from 'node:net'

/** A header as sent: a name and a value given as text (latin1) or as raw bytes. */
export type RawHeader = readonly [name: string, value: string | Buffer]

export interface RawRequest {
  method?: string
  /** The request target, sent as is (`/me?x=1`). */
  target: string
  headers?: readonly RawHeader[]
  body?: string | Buffer
  /** Give up after this long, in milliseconds (the answer then has status 0 and `timedOut`). */
  timeoutMs?: number
}

export interface RawResponse {
  /** 0 when the server closed the connection without an answer, or on timeout. */
  status: number
  /** Lower-case names; a header sent several times keeps its last value. */
  headers: Record<string, string>
  body: string
  /** Parsed JSON body, when the body is JSON. */
  json: Record<string, any> | undefined
  elapsedMs: number
  timedOut: boolean
}

const CRLF = '\r\n'

/**
 * Sends one request to `origin` (`http://127.0.0.1:port`) and reads the answer until the server closes.
 * @example
 * const r = await rawRequest('http://127.0.0.1:8080', { target: '/me', headers: [['authorization', 'Bearer x']] })
 */
export function rawRequest(origin: string, request: RawRequest): Promise<RawResponse> {
  const { hostname, port } = new URL(origin)
  const started = performance.now()
  const head: Buffer[] = [
    Buffer.from(`${request.method ?? 'GET'} ${request.target} HTTP/1.1${CRLF}`, 'latin1'),
    Buffer.from(`host: ${hostname}:${port}${CRLF}connection: close${CRLF}`, 'latin1'),
  ]
  for (const [name, value] of request.headers ?? []) {
    head.push(Buffer.from(`${name}: `, 'latin1'), Buffer.from(value as string, 'latin1'), Buffer.from(CRLF))
  }
  const body = request.body === undefined ? undefined : Buffer.from(request.body)
  if (body) head.push(Buffer.from(`content-length: ${body.length}${CRLF}`, 'latin1'))
  head.push(Buffer.from(CRLF))
  if (body) head.push(body)

  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    let settled = false
    const socket = connect({ host: hostname, port: Number(port) })
    const finish = (timedOut: boolean) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      resolve({ ...parseResponse(Buffer.concat(chunks)), elapsedMs: performance.now() - started, timedOut })
    }
    const timer = setTimeout(() => finish(true), request.timeoutMs ?? 10_000)
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    // A server may answer and close while we are still writing (431 on huge headers): keep what arrived.
    socket.on('error', () => finish(false))
    socket.on('close', () => finish(false))
    // Written, not ended: Node servers treat a client's half-close as an abort of the request in flight.
    socket.write(Buffer.concat(head))
  })
}

function parseResponse(bytes: Buffer): Omit<RawResponse, 'elapsedMs' | 'timedOut'> {
  const end = bytes.indexOf('\r\n\r\n')
  if (end === -1) return { status: 0, headers: {}, body: '', json: undefined }
  const [statusLine, ...lines] = bytes.subarray(0, end).toString('latin1').split(CRLF)
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1] ?? 0)
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  let payload = bytes.subarray(end + 4)
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) payload = dechunk(payload)
  const body = payload.toString('utf8')
  let json: Record<string, any> | undefined
  if ((headers['content-type'] ?? '').includes('json')) {
    try {
      json = JSON.parse(body)
    } catch {
      json = undefined
    }
  }
  return { status, headers, body, json }
}

function dechunk(payload: Buffer): Buffer {
  const parts: Buffer[] = []
  let at = 0
  while (at < payload.length) {
    const lineEnd = payload.indexOf('\r\n', at)
    if (lineEnd === -1) break
    const size = Number.parseInt(payload.subarray(at, lineEnd).toString('latin1'), 16)
    if (!Number.isFinite(size) || size === 0) break
    parts.push(payload.subarray(lineEnd + 2, lineEnd + 2 + size))
    at = lineEnd + 2 + size + 2
  }
  return Buffer.concat(parts)
}
