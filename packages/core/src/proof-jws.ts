/**
 * What both halves of a DPoP proof agree on: the algorithms, their Web Crypto parameters, which
 * key fits which algorithm, the signature length and the `ath` hash. The client half is
 * `proof-create.ts`, the server half `proof-verify.ts`.
 *
 * @module
 */

import { sha256Base64url } from './encoding.js'

/**
 * The proof signature algorithms callproof accepts: ES256, and Ed25519 under both of its JWS
 * names (`EdDSA`, and `Ed25519` from RFC 9864).
 *
 * @example
 * ```ts
 * const algorithms: ProofAlgorithm[] = ['ES256']
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-5.1
 * @see https://www.rfc-editor.org/rfc/rfc9864
 */
export type ProofAlgorithm = 'ES256' | 'EdDSA' | 'Ed25519'

/**
 * The default proof algorithm allowlist.
 *
 * @example
 * ```ts
 * createVerifier({ ...options, algorithms: PROOF_ALGORITHMS })
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-5.1
 */
export const PROOF_ALGORITHMS: readonly ProofAlgorithm[] = Object.freeze([
  'ES256',
  'EdDSA',
  'Ed25519',
])

/** The JOSE `typ` of a DPoP proof (RFC 9449 §4.2). */
export const PROOF_TYP = 'dpop+jwt'

/** ES256 (IEEE P1363 `r || s`) and Ed25519 signatures are both exactly this many bytes. */
export const SIGNATURE_LENGTH = 64

/** The Web Crypto parameters of a proof algorithm's signature (ECDSA with SHA-256, or Ed25519). */
export function webCryptoParams(alg: ProofAlgorithm): EcdsaParams | Algorithm {
  return alg === 'ES256' ? { name: 'ECDSA', hash: 'SHA-256' } : { name: 'Ed25519' }
}

/**
 * True when a JWK's `kty`/`crv` is the key type `alg` signs with: P-256 for ES256, Ed25519 for
 * EdDSA/Ed25519. A mismatch would have a verifier import the key for the wrong algorithm.
 */
export function jwkFitsAlg(jwk: { kty?: unknown; crv?: unknown }, alg: ProofAlgorithm): boolean {
  return alg === 'ES256'
    ? jwk.kty === 'EC' && jwk.crv === 'P-256'
    : jwk.kty === 'OKP' && jwk.crv === 'Ed25519'
}

/**
 * The `ath` claim for an access token: base64url(SHA-256(ASCII(token))), which ties a proof to
 * the one token it travels with. Nothing is remembered between calls: the verifier keeps each
 * token's `ath` with the verified token, and a client that sends many requests with one token can
 * pass the hash as `createProof`'s `ath` input.
 *
 * @example
 * ```ts
 * await accessTokenHash('Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU') // 'fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo'
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-4.2
 */
export function accessTokenHash(accessToken: string): Promise<string> {
  return sha256Base64url(accessToken)
}
