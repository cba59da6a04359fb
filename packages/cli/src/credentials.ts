/**
 * What a request's credentials say, decoded for a reader: the access token's header and claims
 * and the DPoP proof's header and claims. Nothing is verified here (the server does that) and the
 * signatures are left out: a lesson shows what is signed, never something to copy and replay.
 */
import { decodeJwt, decodeProtectedHeader } from 'jose'

/** A decoded JWT, its signature elided; or why it could not be decoded. */
export type DecodedJwt =
  | {
      readonly header: Record<string, unknown>
      readonly claims: Record<string, unknown>
      readonly signature: 'elided'
    }
  | { readonly error: string }

/** The credentials of one request. */
export interface DecodedCredentials {
  /** The `Authorization` scheme (`DPoP`, `Bearer`), when there is one. */
  readonly scheme?: string
  /** The access token, when the request carries one. */
  readonly token?: DecodedJwt
  /** The DPoP proof, when the request carries one. */
  readonly proof?: DecodedJwt
}

/**
 * Decodes a compact JWS's header and payload.
 *
 * @example
 * ```ts
 * decodeJwtParts('eyJ…') // { header: { typ: 'dpop+jwt', … }, claims: { htm: 'POST', … }, signature: 'elided' }
 * ```
 */
export function decodeJwtParts(jwt: string): DecodedJwt {
  try {
    return {
      header: decodeProtectedHeader(jwt) as Record<string, unknown>,
      claims: decodeJwt(jwt) as Record<string, unknown>,
      signature: 'elided',
    }
  } catch {
    // An opaque token or a malformed proof: the server decides what it is worth.
    return { error: `not a JWT (${jwt.length} characters)` }
  }
}

/**
 * The decoded token and proof of a request's headers (lower-case names, as recorded).
 *
 * @example
 * ```ts
 * decodeCredentials({ authorization: 'DPoP eyJ…', dpop: 'eyJ…' }) // { scheme: 'DPoP', token, proof }
 * ```
 */
export function decodeCredentials(headers: Readonly<Record<string, string>>): DecodedCredentials {
  const authorization = headers.authorization
  const match = authorization === undefined ? null : /^(\S+)\s+(\S+)$/.exec(authorization.trim())
  const proof = headers.dpop
  return {
    ...(match?.[1] === undefined ? {} : { scheme: match[1] }),
    ...(match?.[2] === undefined ? {} : { token: decodeJwtParts(match[2]) }),
    ...(proof === undefined ? {} : { proof: decodeJwtParts(proof) }),
  }
}
