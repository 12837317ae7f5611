/**
 * EXTERNAL_ISSUERS: the identity providers whose tokens the `external` login method accepts. Everything
 * that checks their tokens is fixed here (issuer, JWKS URL, audience, algorithms, token types), never taken
 * from a token; `trusted_for_email` says whether the provider's verified `email` claim may link an identity
 * to the account with that e-mail on first sight.
 */
import { Type } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { isSupportedAlgorithm } from '@keygate/fastify-auth'

/** One external issuer, as the code runs on it. */
export interface ExternalIssuer {
  /** Exact `iss`. */
  issuer: string
  /** Where its keys are fetched from (never a URL named by a token). */
  jwksUri: string
  /** The `aud` its tokens must carry for keygate. */
  audience: string
  algorithms: string[]
  /** Accepted `typ` values (RFC 9068 `at+jwt` by default). */
  types: string[]
  /** Whether a verified `email` claim links the identity to the account with that e-mail. */
  trustedForEmail: boolean
}

const ExternalIssuerSchema = Type.Object(
  {
    issuer: Type.String({ pattern: '^https?://' }),
    jwks_uri: Type.String({ pattern: '^https?://' }),
    audience: Type.String({ minLength: 1 }),
    algorithms: Type.Optional(Type.Array(Type.String(), { minItems: 1 })),
    types: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })),
    trusted_for_email: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
)
const ExternalIssuersSchema = Type.Array(ExternalIssuerSchema)

const invalid = (message: string) => new Error(`keygate: invalid configuration: EXTERNAL_ISSUERS${message}`)

/**
 * Parses EXTERNAL_ISSUERS (a JSON string from the environment, or an array from a config file); throws an
 * Error naming the setting and the entry at fault.
 * @example
 * parseExternalIssuers('[{"issuer":"https://idp.example","jwks_uri":"https://idp.example/jwks","audience":"keygate"}]')
 */
export function parseExternalIssuers(value: string | unknown[] | undefined): ExternalIssuer[] {
  if (value === undefined) return []
  let parsed: unknown = value
  if (typeof parsed === 'string') {
    try {
      parsed = JSON.parse(parsed)
    } catch {
      throw invalid(' is not valid JSON')
    }
  }
  if (!Value.Check(ExternalIssuersSchema, parsed)) {
    const first = Value.Errors(ExternalIssuersSchema, parsed).First()
    throw invalid(`${first?.path ?? ''} ${first?.message ?? ''}`)
  }
  const seen = new Set<string>()
  return parsed.map((entry, i) => {
    const bad = entry.algorithms?.find((alg) => !isSupportedAlgorithm(alg))
    if (bad) throw invalid(`/${i}/algorithms: ${bad} is not supported`)
    if (seen.has(entry.issuer)) throw invalid(`/${i}/issuer: ${entry.issuer} is listed twice`)
    seen.add(entry.issuer)
    return {
      issuer: entry.issuer,
      jwksUri: entry.jwks_uri,
      audience: entry.audience,
      algorithms: entry.algorithms ?? ['RS256'],
      types: (entry.types ?? ['at+jwt']).map((t) => t.toLowerCase()),
      trustedForEmail: entry.trusted_for_email ?? false,
    }
  })
}
