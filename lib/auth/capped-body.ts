/**
 * Reading a whole HTTP body whose size the other side controls (a JWKS, a neighbour service's answer): at
 * most a given number of bytes, so a peer that misbehaves cannot make keygate buffer without bound.
 */

/**
 * The body as one buffer, or undefined when it is longer than `maxBytes`. Reading stops at the first byte
 * past the cap: leaving the loop early destroys the stream, so the rest is never read.
 * @example
 * const body = await readCappedBody(res.body, 256 * 1024)
 * if (body === undefined) throw new Error('body exceeds the size limit')
 * const json = JSON.parse(body.toString('utf8'))
 */
export async function readCappedBody(
  body: AsyncIterable<Uint8Array>,
  maxBytes: number,
): Promise<Buffer | undefined> {
  const chunks: Uint8Array[] = []
  let size = 0
  for await (const chunk of body) {
    size += chunk.length
    if (size > maxBytes) return undefined
    chunks.push(chunk)
  }
  return Buffer.concat(chunks)
}
