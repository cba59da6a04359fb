/**
 * The client half of a DPoP proof (RFC 9449 §4): {@link createProof} and its signing seam.
 *
 * @module
 */

import { base64url } from 'jose'
import type { JWK, JWTPayload } from 'jose'
import type { McpBinding } from './binding.js'
import type { Clock } from './clock.js'
import { CallproofError } from './errors.js'
import {
  PROOF_TYP,
  SIGNATURE_LENGTH,
  accessTokenHash,
  jwkFitsAlg,
  webCryptoParams,
} from './proof-jws.js'
import type { ProofAlgorithm } from './proof-jws.js'

const encoder = new TextEncoder()

/**
 * What goes into a proof. `htu` is used verbatim: give the resource URL without query or
 * fragment (RFC 9449 §4.2). `accessToken` adds `ath`; `mcp` is the call binding.
 *
 * @example
 * ```ts
 * const input: CreateProofInput = { htm: 'POST', htu: 'https://drive.example/mcp', accessToken, mcp }
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-4.2
 */
export interface CreateProofInput {
  /** The HTTP method of the request. */
  htm: string
  /** The HTTP target URI without query and fragment. */
  htu: string
  /** The access token the request carries: its SHA-256 becomes `ath`. */
  accessToken?: string
  /**
   * The precomputed `ath` of `accessToken` ({@link accessTokenHash}), for a client that sends many
   * requests with one token. Used instead of hashing `accessToken` again; ignored without it.
   */
  ath?: string
  /** The server-provided nonce. */
  nonce?: string
  /** The call binding, from {@link bindingFor}. */
  mcp?: McpBinding
  /** Defaults to a random value. */
  jti?: string
  /** Seconds since the epoch; defaults to the clock. */
  iat?: number
}

/**
 * Signs a proof's JWS signing input with the proof's private key: returns the raw signature
 * (ES256: IEEE P1363 `r || s`, 64 bytes; Ed25519: 64 bytes). The default is Web Crypto. Pass
 * your own for a key Web Crypto does not hold (a platform or hardware key behind a `CryptoKey`
 * stand-in, whose public half is `keyPair.publicKey`). It must not export or copy the key.
 *
 * @example
 * ```ts
 * const sign: ProofSigningFunction = (data, key, alg) =>
 *   isMine(key) ? signElsewhere(data, alg) : webCryptoProofSigning(data, key, alg)
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc7515#section-5.1
 */
export type ProofSigningFunction = (
  data: Uint8Array<ArrayBuffer>,
  privateKey: CryptoKey,
  alg: ProofAlgorithm,
) => Uint8Array | Promise<Uint8Array>

/**
 * Options of {@link createProof}.
 *
 * @example
 * ```ts
 * const options: CreateProofOptions = { alg: 'ES256' }
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-4.2
 */
export interface CreateProofOptions {
  /** The JWS algorithm; default from the key (ES256 for P-256, EdDSA for Ed25519). */
  alg?: ProofAlgorithm
  /** Milliseconds since the epoch for `iat` (default `Date.now`). */
  clock?: Clock
  /** How the signing input is signed (default: Web Crypto's `crypto.subtle.sign`). */
  sign?: ProofSigningFunction
  /**
   * The JWK of `keyPair.publicKey` (`crypto.subtle.exportKey('jwk', …)`), for a client that
   * signs many proofs with one key: the key is then not exported again for every proof. Only its
   * public members go into the header, and they must fit `alg`.
   */
  publicJwk?: JWK
}

/**
 * {@link createProof}'s default signing: Web Crypto's `crypto.subtle.sign`. Exported so that a
 * signing function can fall back to it for keys it does not handle.
 *
 * @example
 * ```ts
 * const proof = await createProof(keyPair, input, { sign: webCryptoProofSigning })
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc7518#section-3.4
 */
export const webCryptoProofSigning: ProofSigningFunction = async (data, privateKey, alg) =>
  new Uint8Array(await crypto.subtle.sign(webCryptoParams(alg), privateKey, data))

/** The public members of `key` as a JWK: a proof header must never carry private key material. */
async function publicJwkOf(key: CryptoKey): Promise<JWK> {
  return publicMembers((await crypto.subtle.exportKey('jwk', key)) as JWK)
}

function publicMembers(jwk: JWK): JWK {
  const full = jwk as Record<string, unknown>
  const members = full['kty'] === 'EC' ? ['kty', 'crv', 'x', 'y'] : ['kty', 'crv', 'x']
  const publicJwk: Record<string, unknown> = {}
  for (const m of members) if (full[m] !== undefined) publicJwk[m] = full[m]
  return publicJwk as JWK
}

function defaultAlg(key: CryptoKey): ProofAlgorithm {
  const name = key.algorithm.name
  if (name === 'ECDSA' && (key.algorithm as EcKeyAlgorithm).namedCurve === 'P-256') return 'ES256'
  if (name === 'Ed25519') return 'EdDSA'
  throw new CallproofError(
    'ERR_INVALID_OPTIONS',
    `proof key algorithm ${name} is not supported (expected ECDSA P-256 or Ed25519)`,
  )
}

/**
 * base64url of the proof's protected header for `publicKey` signing with `alg`. Made for every
 * proof (exporting a public key costs a few µs, against a few hundred for the signature): nothing
 * is kept in module scope, so no key outlives its owner here.
 */
async function protectedHeaderOf(
  publicKey: CryptoKey,
  alg: ProofAlgorithm,
  known?: JWK,
): Promise<string> {
  const jwk = known !== undefined ? publicMembers(known) : await publicJwkOf(publicKey)
  if (!jwkFitsAlg(jwk, alg)) {
    throw new CallproofError(
      'ERR_INVALID_OPTIONS',
      `proof alg ${String(alg)} does not fit the key (${String(jwk.kty)}/${String(jwk.crv)})`,
    )
  }
  return base64url.encode(JSON.stringify({ alg, typ: PROOF_TYP, jwk }))
}

/**
 * Creates a DPoP proof for one request, signed with the private key of `keyPair`; the header's
 * `jwk` is the public key only. The private key may be non-extractable.
 *
 * @example
 * ```ts
 * const keyPair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify'])
 * const proof = await createProof(keyPair, {
 *   htm: 'POST',
 *   htu: 'https://drive.example/mcp',
 *   accessToken,
 *   mcp: await bindingFor(message),
 * })
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-4
 */
export async function createProof(
  keyPair: CryptoKeyPair,
  input: CreateProofInput,
  options?: CreateProofOptions,
): Promise<string> {
  const alg = options?.alg ?? defaultAlg(keyPair.privateKey)
  const clock = options?.clock ?? Date.now
  const payload: JWTPayload = {
    jti: input.jti ?? base64url.encode(crypto.getRandomValues(new Uint8Array(16))),
    htm: input.htm,
    htu: input.htu,
    iat: input.iat ?? Math.floor(clock() / 1000),
  }
  if (input.accessToken !== undefined) {
    payload.ath = input.ath ?? (await accessTokenHash(input.accessToken))
  }
  if (input.nonce !== undefined) payload.nonce = input.nonce
  if (input.mcp !== undefined) payload.mcp = input.mcp
  // The compact JWS is assembled here and signed with Web Crypto directly (RFC 7515 §3.1): jose's
  // general JWT builder cost about as much again as the binding itself on every call.
  const header = await protectedHeaderOf(keyPair.publicKey, alg, options?.publicJwk)
  const signingInput = `${header}.${base64url.encode(JSON.stringify(payload))}`
  const sign = options?.sign ?? webCryptoProofSigning
  let signature: Uint8Array
  try {
    signature = await sign(encoder.encode(signingInput), keyPair.privateKey, alg)
  } catch (cause) {
    const reason = cause instanceof Error ? `: ${cause.message}` : ''
    throw new CallproofError(
      'ERR_INVALID_OPTIONS',
      `the proof key cannot sign with ${alg} (expected an ECDSA P-256 or Ed25519 private key with the sign usage)${reason}`,
      { cause },
    )
  }
  // A signing function that returns DER or anything else would make proofs every verifier refuses.
  if (signature.length !== SIGNATURE_LENGTH) {
    throw new CallproofError(
      'ERR_INVALID_OPTIONS',
      `the proof signing function returned ${signature.length} bytes (expected a ${SIGNATURE_LENGTH}-byte ${alg} signature)`,
    )
  }
  return `${signingInput}.${base64url.encode(signature)}`
}
