/**
 * EXTERNAL_ISSUERS: the identity providers whose tokens the `external` login method accepts. Everything
 * that checks their tokens is fixed here (issuer, JWKS URL, audience, algorithms, token types, profile),
 * never taken from a token; `trusted_for_email` says whether the provider's verified `email` claim may link
 * an identity to the account with that e-mail on first sight; `introspection` names the provider's RFC 7662
 * endpoint that every external login asks whether the token is still active (revoked tokens log nothing in).
 */
import { readFileSync } from 'node:fs'
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
  /**
   * `rfc9068` (default): access tokens with `typ`, `jti` and `client_id`. `jwt`: any signed JWT of the
   * provider addressed to `audience`, such as an OpenID Connect ID token (`typ: JWT` or none, `aud` = a
   * client id, no `jti`, `client_id` or `scope` needed).
   */
  profile: 'rfc9068' | 'jwt'
  /** Whether a verified `email` claim links the identity to the account with that e-mail. */
  trustedForEmail: boolean
  /** The provider's RFC 7662 introspection endpoint, asked at every login with this issuer's tokens. */
  introspection: ExternalIntrospectionEndpoint | undefined
}

/** Where and as whom keygate asks a provider whether a token is still active (RFC 7662). */
export interface ExternalIntrospectionEndpoint {
  endpoint: string
  /** keygate's client at the provider (`client_secret_basic`). */
  clientId: string
  clientSecret: string
}

const ExternalIssuerSchema = Type.Object(
  {
    issuer: Type.String({ pattern: '^https?://' }),
    jwks_uri: Type.String({ pattern: '^https?://' }),
    audience: Type.String({ minLength: 1 }),
    algorithms: Type.Optional(Type.Array(Type.String(), { minItems: 1 })),
    types: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })),
    profile: Type.Optional(Type.Union([Type.Literal('rfc9068'), Type.Literal('jwt')])),
    trusted_for_email: Type.Optional(Type.Boolean()),
    introspection: Type.Optional(
      Type.Object(
        {
          endpoint: Type.String({ pattern: '^https?://' }),
          client_id: Type.String({ minLength: 1 }),
          client_secret: Type.Optional(Type.String({ minLength: 1 })),
          client_secret_file: Type.Optional(Type.String({ minLength: 1 })),
        },
        { additionalProperties: false },
      ),
    ),
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
      types: (entry.types ?? (entry.profile === 'jwt' ? ['jwt'] : ['at+jwt'])).map((t) => t.toLowerCase()),
      profile: entry.profile ?? 'rfc9068',
      trustedForEmail: entry.trusted_for_email ?? false,
      introspection: entry.introspection && {
        endpoint: entry.introspection.endpoint,
        clientId: entry.introspection.client_id,
        clientSecret: clientSecret(entry.introspection, i),
      },
    }
  })
}

/** The introspection client's secret, given inline or (kept out of the setting) as a file's content. */
function clientSecret(entry: { client_secret?: string; client_secret_file?: string }, i: number): string {
  const at = `/${i}/introspection`
  if ((entry.client_secret === undefined) === (entry.client_secret_file === undefined)) {
    throw invalid(`${at}: give client_secret or client_secret_file, exactly one`)
  }
  if (entry.client_secret !== undefined) return entry.client_secret
  let secret: string
  try {
    secret = readFileSync(entry.client_secret_file!, 'utf8').replace(/\r?\n$/, '')
  } catch (err) {
    throw invalid(
      `${at}/client_secret_file: cannot read ${entry.client_secret_file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    )
  }
  if (secret === '') throw invalid(`${at}/client_secret_file: ${entry.client_secret_file} is empty`)
  return secret
}
