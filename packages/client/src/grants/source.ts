/**
 * Where an agent's assertion comes from (a workload token, a user's ID token): a string, a file,
 * an environment variable or a function, read anew for every grant, because platforms rotate them
 * (a Kubernetes projected service account token is rewritten in place before it expires).
 *
 * @module
 */

import { readFile } from 'node:fs/promises'
import {
  decodeJwt,
  decodeProtectedHeader,
  type JWTPayload,
  type ProtectedHeaderParameters,
} from 'jose'
import { CallproofClientError } from '../errors.js'

/**
 * An assertion: the JWT itself, `{ file }` (read each time, surrounding whitespace ignored),
 * `{ env }` (the variable's value each time) or a function returning it.
 *
 * @example
 * ```ts
 * const k8s: AssertionSource = { file: '/var/run/secrets/tokens/mcp-token' }
 * const ci: AssertionSource = () => fetchCiOidcToken('https://auth.example.com')
 * ```
 */
export type AssertionSource =
  string | { file: string } | { env: string } | (() => string | Promise<string>)

/** Larger than any JWT a platform issues; a bigger "token" is a misconfigured path. */
const MAX_ASSERTION_BYTES = 16 * 1024

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/

/** What a source holds, decoded (not verified: the authorization server verifies it). */
export interface Assertion {
  /** The compact JWT. */
  jwt: string
  /** Its protected header. */
  header: ProtectedHeaderParameters
  /** Its claims. */
  claims: JWTPayload
}

function describeSource(source: AssertionSource): string {
  if (typeof source === 'string') return 'the assertion given'
  if (typeof source === 'function') return 'the assertion function'
  if ('file' in source) return `assertion file ${source.file}`
  return `environment variable ${source.env}`
}

async function readSource(source: AssertionSource): Promise<string | undefined> {
  if (typeof source === 'string') return source
  if (typeof source === 'function') return source()
  if ('file' in source) return readFile(source.file, 'utf8')
  return process.env[source.env]
}

/**
 * Reads and decodes an assertion: a compact JWS, at most 16 KiB, not expired. The claims are
 * read only to refuse, before sending, a token that cannot be meant for this grant; trust comes
 * from the authorization server's verification, never from this decoding.
 *
 * @param source - where the assertion is
 * @param what - what it is, for messages (`workload assertion`, `ID token`)
 * @throws {@link CallproofClientError} `ERR_ASSERTION_INVALID`
 * @example
 * ```ts
 * const { jwt, claims } = await readAssertion({ env: 'MCP_WORKLOAD_TOKEN' }, 'workload assertion')
 * ```
 */
export async function readAssertion(source: AssertionSource, what: string): Promise<Assertion> {
  const where = describeSource(source)
  let raw: unknown
  try {
    raw = await readSource(source)
  } catch (err) {
    throw new CallproofClientError(
      'ERR_ASSERTION_INVALID',
      `${what}: ${where} could not be read: ${(err as Error).message}`,
      { cause: err },
    )
  }
  if (typeof raw !== 'string' || raw.trim() === '') {
    throw new CallproofClientError('ERR_ASSERTION_INVALID', `${what}: ${where} is empty`)
  }
  const jwt = raw.trim()
  if (jwt.length > MAX_ASSERTION_BYTES || !COMPACT_JWS.test(jwt)) {
    // Never echo the content: it may be a secret that merely has the wrong shape.
    throw new CallproofClientError('ERR_ASSERTION_INVALID', `${what}: ${where} is not a JWT`)
  }
  let header: ProtectedHeaderParameters
  let claims: JWTPayload
  try {
    header = decodeProtectedHeader(jwt)
    claims = decodeJwt(jwt)
  } catch (err) {
    throw new CallproofClientError('ERR_ASSERTION_INVALID', `${what}: ${where} is not a JWT`, {
      cause: err,
    })
  }
  if (typeof claims.exp === 'number' && claims.exp <= Math.floor(Date.now() / 1000)) {
    throw new CallproofClientError(
      'ERR_ASSERTION_INVALID',
      `${what}: ${where} expired at ${new Date(claims.exp * 1000).toISOString()}`,
    )
  }
  return { jwt, header, claims }
}

/** An issuer or endpoint identifier compared as the URL it names (trailing slash of an origin). */
function sameIdentifier(a: string, b: string): boolean {
  if (a === b) return true
  const strip = (x: string) => x.replace(/\/+$/, '')
  return strip(a) === strip(b) && URL.canParse(a) && URL.canParse(b)
}

/**
 * Whether the JWT's `aud` names one of `expected` (RFC 7519 §4.1.3: a string or an array).
 *
 * @example
 * ```ts
 * audienceIncludes({ aud: 'https://as.example' }, ['https://as.example/']) // true
 * ```
 */
export function audienceIncludes(claims: JWTPayload, expected: readonly string[]): boolean {
  const aud = typeof claims.aud === 'string' ? [claims.aud] : (claims.aud ?? [])
  return aud.some((a) => typeof a === 'string' && expected.some((e) => sameIdentifier(a, e)))
}

/**
 * A claim value for an error message: JSON (control characters escaped), at most 200 characters,
 * since it comes from a token nobody has verified yet.
 */
export function describeClaim(value: unknown): string {
  const text = JSON.stringify(value ?? null) ?? 'null'
  return text.length > 200 ? `${text.slice(0, 200)}…` : text
}
