/**
 * JWK thumbprints (RFC 7638), the value a DPoP-bound token carries in `cnf.jkt`.
 *
 * @module
 */

import { calculateJwkThumbprint } from 'jose'
import type { JWK } from 'jose'
import { CallproofError } from './errors.js'
import { sha256Base64url } from './encoding.js'

/**
 * The RFC 7638 SHA-256 thumbprint of a public JWK, base64url without padding.
 *
 * @example
 * ```ts
 * const jkt = await jwkThumbprint(await crypto.subtle.exportKey('jwk', keyPair.publicKey))
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc7638#section-3
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-6.1
 */
export function jwkThumbprint(jwk: JWK): Promise<string> {
  return calculateJwkThumbprint(jwk, 'sha256')
}

/**
 * The RFC 7638 thumbprint input: the required members of the key, in lexicographic order, no
 * whitespace. It is also the cache key of imported proof keys: two JWKs with the same canonical
 * form are the same public key. Throws ERR_INVALID_PROOF for a key type callproof does not accept.
 */
export function canonicalPublicJwk(jwk: Record<string, unknown>): string {
  const str = (name: string): string => {
    const value = jwk[name]
    if (typeof value !== 'string' || value.length === 0 || !/^[A-Za-z0-9_-]+$/.test(value)) {
      throw new CallproofError(
        'ERR_INVALID_PROOF',
        `proof jwk member ${name} is missing or invalid`,
      )
    }
    return value
  }
  switch (jwk.kty) {
    case 'EC':
      return JSON.stringify({ crv: str('crv'), kty: 'EC', x: str('x'), y: str('y') })
    case 'OKP':
      return JSON.stringify({ crv: str('crv'), kty: 'OKP', x: str('x') })
    default:
      throw new CallproofError(
        'ERR_INVALID_PROOF',
        `proof jwk kty ${String(jwk.kty)} is not supported (expected EC or OKP)`,
      )
  }
}

/** Thumbprint of a canonical JWK string, as produced by {@link canonicalPublicJwk}. */
export function thumbprintOfCanonical(canonical: string): Promise<string> {
  return sha256Base64url(canonical)
}
