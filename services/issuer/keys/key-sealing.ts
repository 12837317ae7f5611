/**
 * Private signing keys sealed for a shared database: AES-256-GCM under KEY_ENCRYPTION_KEY, which never
 * enters the database. A dump or backup of the database alone cannot sign tokens, and a sealed key cannot
 * be moved to another kid's row or altered without the open failing.
 *
 * Sealed form: `kgk1.<kek id>.<iv>.<ciphertext>.<tag>` (base64url parts). The kek id names the key it was
 * sealed with, so a wrong KEY_ENCRYPTION_KEY is reported as such rather than as a damaged key.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto'
import type { JWK } from 'jose'

/** Bytes of a key-encryption key (AES-256). */
export const KEY_ENCRYPTION_KEY_BYTES = 32
const FORMAT = 'kgk1'
const IV_BYTES = 12
const TAG_BYTES = 16

/**
 * Decodes KEY_ENCRYPTION_KEY: 32 bytes as base64, base64url or hex (`openssl rand -base64 32`). Throws a
 * configuration error naming the setting, never quoting the value.
 * @example
 * const kek = parseKeyEncryptionKey(process.env.KEY_ENCRYPTION_KEY!)
 */
export function parseKeyEncryptionKey(value: string): Buffer {
  const text = value.trim()
  const key = /^[0-9a-fA-F]{64}$/.test(text)
    ? Buffer.from(text, 'hex')
    : /^[A-Za-z0-9+/_-]{43}={0,1}$/.test(text)
      ? Buffer.from(text.replace(/\+/g, '-').replace(/\//g, '_').replace(/=$/, ''), 'base64url')
      : undefined
  if (!key || key.length !== KEY_ENCRYPTION_KEY_BYTES) {
    throw new Error(
      'keygate: invalid configuration: KEY_ENCRYPTION_KEY must be 32 random bytes in base64 or hex (openssl rand -base64 32)',
    )
  }
  return key
}

/** Seals and opens private JWKs with one key-encryption key. */
export class KeySealer {
  readonly #kek: Buffer
  /** A public name of the key-encryption key (an HMAC of it, not the key). */
  readonly kekId: string

  constructor(kek: Buffer) {
    if (kek.length !== KEY_ENCRYPTION_KEY_BYTES) throw new Error('keygate: a key-encryption key is 32 bytes')
    this.#kek = Buffer.from(kek)
    this.kekId = createHmac('sha256', this.#kek).update('keygate key-encryption key id').digest('base64url').slice(0, 11)
  }

  /** Seals `jwk` for the row of `kid`. */
  seal(kid: string, jwk: JWK): string {
    const iv = randomBytes(IV_BYTES)
    const cipher = createCipheriv('aes-256-gcm', this.#kek, iv, { authTagLength: TAG_BYTES })
    cipher.setAAD(aad(kid))
    const ciphertext = Buffer.concat([cipher.update(JSON.stringify(jwk), 'utf8'), cipher.final()])
    return [FORMAT, this.kekId, iv, ciphertext, cipher.getAuthTag()]
      .map((part) => (typeof part === 'string' ? part : part.toString('base64url')))
      .join('.')
  }

  /** Opens the sealed key of `kid`; throws, naming KEY_ENCRYPTION_KEY, when it cannot. */
  open(kid: string, sealed: string): JWK {
    const parts = sealed.split('.')
    const [format, kekId, iv, ciphertext, tag] = parts
    if (parts.length !== 5 || format !== FORMAT) {
      throw new Error(`keygate: the stored private key of ${kid} is not in a known sealed form`)
    }
    if (kekId !== this.kekId) {
      throw new Error(
        `keygate: the stored private key of ${kid} was sealed with a different KEY_ENCRYPTION_KEY (${kekId}, configured: ${this.kekId})`,
      )
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#kek, Buffer.from(iv!, 'base64url'), {
        authTagLength: TAG_BYTES,
      })
      decipher.setAAD(aad(kid))
      decipher.setAuthTag(Buffer.from(tag!, 'base64url'))
      const plain = Buffer.concat([decipher.update(Buffer.from(ciphertext!, 'base64url')), decipher.final()])
      return JSON.parse(plain.toString('utf8')) as JWK
    } catch {
      throw new Error(
        `keygate: the stored private key of ${kid} does not open with KEY_ENCRYPTION_KEY (altered, or moved from another row)`,
      )
    }
  }
}

/** Binds a sealed key to its kid and format. */
function aad(kid: string): Buffer {
  return Buffer.from(`${FORMAT}:${kid}`, 'utf8')
}
