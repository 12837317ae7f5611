/**
 * The e-mail code settings (EMAIL_CODE_*) and the shape of a code, apart from email-codes.ts so the
 * configuration can name them without importing what codes are made with.
 */
import type { RatePerWindow } from '../../lib/config.js'

/** Digits in a code. */
export const EMAIL_CODE_DIGITS = 6
/** What a code looks like on the wire (the routes' schema). */
export const EMAIL_CODE_PATTERN = `^[0-9]{${EMAIL_CODE_DIGITS}}$`
export const DEFAULT_EMAIL_CODE_TTL = '10m'
export const DEFAULT_EMAIL_CODE_MAX_ATTEMPTS = 5
/** Code requests per client address, whatever the e-mails. */
export const DEFAULT_EMAIL_CODE_RATE_LIMIT_PER_ADDRESS = '20/15m'
/** Code requests per e-mail, from any address: an inbox gets at most this many codes per window. */
export const DEFAULT_EMAIL_CODE_RATE_LIMIT_PER_EMAIL = '5/15m'

/** The issuer's EMAIL_CODE_* settings, in milliseconds. */
export interface EmailCodeSettings {
  emailCodeTtlMs: number
  emailCodeMaxAttempts: number
  emailCodeLimitPerAddress: RatePerWindow
  emailCodeLimitPerEmail: RatePerWindow
}
