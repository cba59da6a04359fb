/**
 * Access-token checks: a JWT access token (RFC 9068) that is sender-constrained to a DPoP key
 * (`cnf.jkt`, RFC 9449 §6) and meant for this resource (`aud`, RFC 8707).
 *
 * @module
 */

import { decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose'
import type { JWTVerifyGetKey } from 'jose'
import { COMPACT_JWS, isObject } from './encoding.js'
import { CallproofError } from './errors.js'
import type { Clock } from './clock.js'

/**
 * An RFC 9396 authorization details entry (`type` plus whatever members its type defines).
 *
 * @example
 * ```ts
 * const detail: AuthorizationDetail = { type: 'mcp_tool_call', resource, tool: 'share_file', args }
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9396#section-2
 */
export interface AuthorizationDetail {
  /** The type of authorization the entry describes. */
  type: string
  [member: string]: unknown
}

/**
 * The claims of a verified access token, as callproof relies on them.
 *
 * @example
 * ```ts
 * const { sub, client_id, cnf } = verified.claims
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9068#section-2.2
 */
export interface AccessTokenClaims {
  iss: string
  sub: string
  aud: string | string[]
  exp: number
  iat: number
  jti: string
  client_id: string
  scope?: string
  cnf: { jkt: string }
  acr?: string
  auth_time?: number
  authorization_details?: AuthorizationDetail[]
  [claim: string]: unknown
}

/**
 * Resolves the verification key of an access token (jose's `JWTVerifyGetKey`); the server builds
 * one per trusted issuer from its `jwks_uri` (`createRemoteJWKSet`).
 *
 * @example
 * ```ts
 * const keys: KeyResolver = createRemoteJWKSet(new URL('https://as.example/jwks'))
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc8414#section-2
 */
export type KeyResolver = JWTVerifyGetKey

/**
 * The asymmetric JWS algorithms accepted for access tokens by default. `none` and HMAC are never
 * accepted: a symmetric key shared with the authorization server would let anyone holding it
 * (every resource server) mint tokens.
 *
 * @example
 * ```ts
 * verifyAccessToken(token, { ...options, algorithms: ['ES256'] })
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9068#section-4
 */
export const TOKEN_ALGORITHMS: readonly string[] = Object.freeze([
  'ES256',
  'ES384',
  'ES512',
  'PS256',
  'PS384',
  'PS512',
  'RS256',
  'RS384',
  'RS512',
  'EdDSA',
  'Ed25519',
])

/**
 * What {@link verifyAccessToken} checks a token against.
 *
 * @example
 * ```ts
 * const options: VerifyAccessTokenOptions = { issuers: ['https://as.example'], keys, audience: 'https://drive.example/mcp' }
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9068#section-4
 */
export interface VerifyAccessTokenOptions {
  /** Trusted issuers: `iss` must be one of them. */
  issuers: readonly string[]
  /** Resolves the signing key. */
  keys: KeyResolver
  /** This server's resource URI: `aud` must contain it. */
  audience: string
  /** Allowed algorithms, asymmetric only (default {@link TOKEN_ALGORITHMS}). */
  algorithms?: readonly string[]
  /** Tolerance for `exp`, `nbf` and `iat`, in seconds (default 5). */
  clockToleranceSeconds?: number
  /** Milliseconds since the epoch (default `Date.now`). */
  clock?: Clock
  /**
   * Accept a token without `typ` (for authorization servers that do not set it). A token whose
   * `typ` is present and is not `at+jwt` is refused either way. Off by default.
   */
  allowMissingTyp?: boolean
}

/**
 * A token that passed {@link verifyAccessToken}.
 *
 * @example
 * ```ts
 * if (!verified.scopes.includes('drive:read')) …
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9068#section-2.2.3
 */
export interface VerifiedToken {
  /** The token's claims (checked: see {@link verifyAccessToken}). */
  readonly claims: AccessTokenClaims
  /** The `scope` claim split on spaces. */
  readonly scopes: readonly string[]
}

const MAX_TOKEN_LENGTH = 16 * 1024

function invalid(message: string, cause?: unknown): CallproofError {
  return new CallproofError(
    'ERR_INVALID_TOKEN',
    message,
    cause === undefined ? undefined : { cause },
  )
}

/**
 * Throws ERR_INVALID_OPTIONS unless every algorithm is an asymmetric JWS algorithm callproof
 * knows (so `none` and `HS256` can never be configured).
 */
export function assertTokenAlgorithms(algorithms: readonly unknown[]): void {
  if (!Array.isArray(algorithms) || algorithms.length === 0) {
    throw new CallproofError('ERR_INVALID_OPTIONS', 'token algorithms must be a non-empty array')
  }
  for (const alg of algorithms) {
    if (typeof alg !== 'string' || !TOKEN_ALGORITHMS.includes(alg)) {
      throw new CallproofError(
        'ERR_INVALID_OPTIONS',
        `token algorithm ${String(alg)} is not allowed (asymmetric only: ${TOKEN_ALGORITHMS.join(' ')})`,
      )
    }
  }
}

function short(value: unknown): string {
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value))
  return text.length > 120 ? `${text.slice(0, 120)}…` : text
}

/**
 * Verifies a JWT access token: `typ` at+jwt, an asymmetric `alg` from the allowlist, the
 * signature, `iss` in the allowlist, `aud` containing the resource, `exp`/`iat`/`nbf` with
 * tolerance, and the presence of `sub`, `client_id`, `jti` and `cnf.jkt` (an unbound token is
 * refused: callproof requires sender-constrained tokens). Every refusal is ERR_INVALID_TOKEN.
 *
 * @example
 * ```ts
 * const token = await verifyAccessToken(accessToken, {
 *   issuers: ['https://as.example'],
 *   keys: createRemoteJWKSet(new URL('https://as.example/jwks')),
 *   audience: 'https://drive.example/mcp',
 * })
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9068#section-4
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-6.1
 */
export async function verifyAccessToken(
  token: string,
  options: VerifyAccessTokenOptions,
): Promise<VerifiedToken> {
  const algorithms = options.algorithms ?? TOKEN_ALGORITHMS
  assertTokenAlgorithms(algorithms)
  const clock = options.clock ?? Date.now
  const tolerance = options.clockToleranceSeconds ?? 5

  if (typeof token !== 'string' || token.length === 0) throw invalid('the access token is missing')
  if (token.length > MAX_TOKEN_LENGTH || !COMPACT_JWS.test(token)) {
    throw invalid('the access token is not a compact JWS')
  }
  let header: Record<string, unknown>
  let unverified: Record<string, unknown>
  try {
    header = decodeProtectedHeader(token) as Record<string, unknown>
    unverified = decodeJwt(token) as Record<string, unknown>
  } catch (cause) {
    throw invalid('the access token is not a JWT', cause)
  }
  const typ = header.typ
  if (typ === undefined) {
    if (!options.allowMissingTyp) throw invalid('the access token has no typ (expected at+jwt)')
  } else if (
    typeof typ !== 'string' ||
    !['at+jwt', 'application/at+jwt'].includes(typ.toLowerCase())
  ) {
    // Refusing other types stops an ID token or a DPoP proof being replayed as an access token.
    throw invalid(`access token typ ${short(typ)} is not at+jwt`)
  }
  if (typeof header.alg !== 'string' || !algorithms.includes(header.alg)) {
    throw invalid(`access token alg ${short(header.alg)} is not allowed`)
  }
  // Checked before any key is resolved, so an untrusted issuer never makes us fetch anything.
  if (typeof unverified.iss !== 'string' || !options.issuers.includes(unverified.iss)) {
    throw invalid(`access token issuer ${short(unverified.iss)} is not trusted`)
  }

  let payload: Record<string, unknown>
  try {
    ;({ payload } = await jwtVerify(token, options.keys, {
      algorithms: [...algorithms],
      issuer: [...options.issuers],
      audience: options.audience,
      clockTolerance: tolerance,
      currentDate: new Date(clock()),
      requiredClaims: ['exp', 'iat', 'jti', 'sub'],
    }))
  } catch (cause) {
    // jose's messages name the failed check ('"aud" claim check failed', …), never the token.
    const code = (cause as { code?: unknown } | null)?.code
    if (code === 'ERR_JWT_EXPIRED') {
      throw invalid(
        `the access token has expired (exp has passed, clock skew tolerance ${tolerance} s)`,
        cause,
      )
    }
    const reason = cause instanceof Error ? `: ${cause.message}` : ''
    throw invalid(`the access token is invalid${reason}`, cause)
  }

  return checkAccessTokenClaims(payload, options)
}

/**
 * The claim checks every access token goes through, whether its claims come from a verified JWT
 * or from an introspection answer: `iss` trusted, `aud` containing the resource, `exp` not passed
 * and `iat` not in the future (with tolerance), `sub`, `client_id`, `jti` present, `cnf.jkt`
 * present (sender-constrained), and the types of `scope`, `acr`, `auth_time`,
 * `authorization_details`. Returns the frozen verified token; every refusal is ERR_INVALID_TOKEN.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9068#section-4
 * @see https://www.rfc-editor.org/rfc/rfc7662#section-2.2
 */
export function checkAccessTokenClaims(
  payload: Record<string, unknown>,
  options: Pick<
    VerifyAccessTokenOptions,
    'issuers' | 'audience' | 'clockToleranceSeconds' | 'clock'
  >,
): VerifiedToken {
  if (!isObject(payload)) throw invalid('the access token claims are not an object')
  const clock = options.clock ?? Date.now
  const tolerance = options.clockToleranceSeconds ?? 5
  if (typeof payload.iss !== 'string' || !options.issuers.includes(payload.iss)) {
    throw invalid(`access token issuer ${short(payload.iss)} is not trusted`)
  }
  const aud = payload.aud
  const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : []
  if (!audiences.includes(options.audience)) {
    // RFC 8707: a token for another resource must not be usable here.
    throw invalid(`access token audience does not include ${options.audience}`)
  }
  const now = clock() / 1000
  if (typeof payload.exp !== 'number' || !Number.isFinite(payload.exp)) {
    throw invalid('the access token has no exp')
  }
  if (payload.exp + tolerance <= now) {
    throw invalid(
      `the access token has expired (exp is ${Math.floor(now - payload.exp)} s ago, clock skew tolerance ${tolerance} s)`,
    )
  }
  if (typeof payload.iat !== 'number' || !Number.isFinite(payload.iat)) {
    throw invalid('the access token has no iat')
  }
  if (payload.iat > now + tolerance) {
    throw invalid(
      `the access token iat is in the future (${Math.ceil(payload.iat - now)} s ahead, beyond the clock skew tolerance of ${tolerance} s)`,
    )
  }
  if (
    payload.nbf !== undefined &&
    (typeof payload.nbf !== 'number' || payload.nbf > now + tolerance)
  ) {
    throw invalid('the access token is not valid yet (nbf is in the future)')
  }
  for (const claim of ['sub', 'client_id', 'jti'] as const) {
    if (typeof payload[claim] !== 'string' || (payload[claim] as string).length === 0) {
      throw invalid(`the access token has no ${claim}`)
    }
  }
  const cnf = payload.cnf
  if (!isObject(cnf) || typeof cnf.jkt !== 'string' || cnf.jkt.length === 0) {
    // A token that is not bound to a key is a bearer token: whoever holds it is "the caller".
    throw invalid('the access token is not bound to a DPoP key (no cnf.jkt)')
  }
  if (payload.scope !== undefined && typeof payload.scope !== 'string') {
    throw invalid('the access token scope is not a string')
  }
  if (payload.acr !== undefined && typeof payload.acr !== 'string') {
    throw invalid('the access token acr is not a string')
  }
  if (
    payload.auth_time !== undefined &&
    (typeof payload.auth_time !== 'number' || !Number.isFinite(payload.auth_time))
  ) {
    throw invalid('the access token auth_time is not a number')
  }
  if (typeof payload.auth_time === 'number' && payload.auth_time > now + tolerance) {
    // A login that has not happened yet would pass every max_age check (now − auth_time < 0):
    // refused like a future iat, so no policy ever sees it.
    throw invalid(
      `the access token auth_time is in the future (${Math.ceil(payload.auth_time - now)} s ahead, beyond the clock skew tolerance of ${tolerance} s)`,
    )
  }
  if (
    payload.authorization_details !== undefined &&
    !Array.isArray(payload.authorization_details)
  ) {
    throw invalid('the access token authorization_details is not an array')
  }
  const claims = deepFreeze(payload) as unknown as AccessTokenClaims
  const scopes = Object.freeze((claims.scope ?? '').split(' ').filter((s) => s.length > 0))
  return Object.freeze({ claims, scopes })
}

/**
 * Verified claims are cached and shared by every call with the same token: frozen all the way
 * down, so that no tool handler can change `cnf.jkt` or `authorization_details` for the next call.
 */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const member of Object.values(value)) deepFreeze(member)
  }
  return value
}
