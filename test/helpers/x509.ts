/**
 * Just enough DER to build X.509 certificates an attacker would put in a token's `x5c`: a self-signed CA and
 * a leaf it signs, RSA with SHA-256. Node can read certificates but not make them, and the tests should not
 * depend on an openssl binary.
 */
import { type KeyObject, sign } from 'node:crypto'

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n])
  const bytes: number[] = []
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff)
  return Buffer.from([0x80 | bytes.length, ...bytes])
}

const tlv = (tag: number, ...content: Buffer[]) => {
  const body = Buffer.concat(content)
  return Buffer.concat([Buffer.from([tag]), length(body.length), body])
}
const sequence = (...items: Buffer[]) => tlv(0x30, ...items)
const set = (...items: Buffer[]) => tlv(0x31, ...items)
/** A small non-negative INTEGER (0–127), minimally encoded as DER requires. */
const integer = (n: number) => tlv(0x02, Buffer.from([n & 0x7f]))
const nullValue = Buffer.from([0x05, 0x00])
const utf8 = (s: string) => tlv(0x0c, Buffer.from(s, 'utf8'))
const bitString = (bytes: Buffer) => tlv(0x03, Buffer.from([0]), bytes)

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number) as [number, number, ...number[]]
  const bytes = [a * 40 + b]
  for (const arc of rest) {
    const parts: number[] = []
    for (let v = arc; ; v = Math.floor(v / 128)) {
      parts.unshift((v % 128) | (parts.length ? 0x80 : 0))
      if (v < 128) break
    }
    bytes.push(...parts)
  }
  return tlv(0x06, Buffer.from(bytes))
}

function utcTime(date: Date): Buffer {
  const p = (n: number) => String(n).padStart(2, '0')
  const text =
    `${p(date.getUTCFullYear() % 100)}${p(date.getUTCMonth() + 1)}${p(date.getUTCDate())}` +
    `${p(date.getUTCHours())}${p(date.getUTCMinutes())}${p(date.getUTCSeconds())}Z`
  return tlv(0x17, Buffer.from(text, 'latin1'))
}

const SHA256_WITH_RSA = sequence(oid('1.2.840.113549.1.1.11'), nullValue)
const name = (commonName: string) => sequence(set(sequence(oid('2.5.4.3'), utf8(commonName))))

export interface CertificateSpec {
  subject: string
  issuer: string
  /** The certified public key. */
  publicKey: KeyObject
  /** The issuer's private key (the subject's own for a self-signed certificate). */
  signingKey: KeyObject
  serial?: number
}

/**
 * A DER X.509 v3 certificate, valid from an hour ago for a day.
 * @example
 * const der = certificate({ subject: 'ca', issuer: 'ca', publicKey, signingKey: privateKey })
 * const x5c = [der.toString('base64')]
 */
export function certificate(spec: CertificateSpec): Buffer {
  const now = Date.now()
  const tbs = sequence(
    tlv(0xa0, integer(2)),
    integer(spec.serial ?? 1),
    SHA256_WITH_RSA,
    name(spec.issuer),
    sequence(utcTime(new Date(now - 3_600_000)), utcTime(new Date(now + 86_400_000))),
    name(spec.subject),
    spec.publicKey.export({ type: 'spki', format: 'der' }),
  )
  return sequence(tbs, SHA256_WITH_RSA, bitString(sign('sha256', tbs, spec.signingKey)))
}
