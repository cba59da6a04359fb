/**
 * The server half of a DPoP proof (RFC 9449 §4.3): {@link verifyProof}, its signature-check seam,
 * and the {@link KeyCache} of imported proof keys. Everything remembered between proofs lives in a
 * `KeyCache` (the verifier owns one); nothing is cached in module scope.
 *
 * @module
 */

import { base64url, decodeProtectedHeader, importJWK } from 'jose'
import type { CryptoKey as JoseCryptoKey, JWK } from 'jose'
import { LruCache } from './cache.js'
import type { Clock } from './clock.js'
import { COMPACT_JWS, isObject, short } from './encoding.js'
import { CallproofError, UseNonceError } from './errors.js'
import { checkHtu } from './htu.js'
import {
  PROOF_ALGORITHMS,
  PROOF_TYP,
  SIGNATURE_LENGTH,
  accessTokenHash,
  jwkFitsAlg,
  webCryptoParams,
} from './proof-jws.js'
import type { ProofAlgorithm } from './proof-jws.js'
import { canonicalPublicJwk, thumbprintOfCanonical } from './thumbprint.js'

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'priv']
const MAX_PROOF_LENGTH = 8192
const MAX_JTI_LENGTH = 512

/**
 * Checks a proof's signature over its JWS signing input with the proof's public key (imported
 * from the header's `jwk` and checked to fit `alg`): true when it is valid. The signature is raw
 * (ES256: IEEE P1363 `r || s`), already checked to be 64 bytes. The default is Web Crypto; a
 * runtime with a cheaper synchronous verifier can pass its own (`@callproof/server` does on
 * Node). The function receives its own copy of the bytes, so it may keep them across awaits.
 *
 * @example
 * ```ts
 * const verifySignature: ProofSignatureCheck = (data, signature, key, alg) =>
 *   fastPath(key) ? verifyHere(data, signature, key, alg) : webCryptoProofVerification(data, signature, key, alg)
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc7515#section-5.2
 */
export type ProofSignatureCheck = (
  data: Uint8Array<ArrayBuffer>,
  signature: Uint8Array<ArrayBuffer>,
  publicKey: CryptoKey,
  alg: ProofAlgorithm,
) => boolean | Promise<boolean>

/**
 * {@link verifyProof}'s default signature check: Web Crypto's `crypto.subtle.verify`. Exported so
 * that a check can fall back to it for keys it does not handle.
 *
 * @example
 * ```ts
 * await verifyProof(proof, { htm, htu, verifySignature: webCryptoProofVerification })
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc7518#section-3.4
 */
export const webCryptoProofVerification: ProofSignatureCheck = (data, signature, publicKey, alg) =>
  crypto.subtle.verify(webCryptoParams(alg), publicKey, signature, data)

/** What a checked proof header resolves to. */
interface CheckedHeader {
  readonly alg: ProofAlgorithm
  readonly key: JoseCryptoKey
  readonly jkt: string
}

/**
 * The checked-header cache of a {@link KeyCache}, for this module only: the class's static block
 * sets it, so no caller outside this module can put an entry in it that did not pass the checks.
 */
let checkedHeadersOf: (cache: KeyCache) => LruCache<string, CheckedHeader>

/**
 * A bounded cache of imported proof public keys, keyed by their canonical JWK (RFC 7638 input),
 * so a returning client's key is imported and thumbprinted once. It also remembers proof headers
 * (their exact base64url segment) that passed every check that does not depend on the request,
 * since a client's header is the same on every proof. Forgetting an entry is safe. A verifier
 * from {@link createVerifier} owns one; give {@link verifyProof} one to get the same savings.
 *
 * @example
 * ```ts
 * const keyCache = new KeyCache(10_000)
 * await verifyProof(proof, { htm, htu, keyCache })
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc7638#section-3
 */
export class KeyCache {
  readonly #keys: LruCache<string, Promise<{ key: JoseCryptoKey; jkt: string }>>
  // Headers that passed typ, jwk public-only and fitting alg, no crit/b64; the alg allowlist is
  // still checked per call, since one cache may serve verifiers with different allowlists.
  readonly #checkedHeaders: LruCache<string, CheckedHeader>

  static {
    checkedHeadersOf = (cache) => cache.#checkedHeaders
  }

  /** @param maxEntries - the most keys kept (default 10 000) */
  constructor(maxEntries = 10_000) {
    this.#keys = new LruCache(maxEntries)
    this.#checkedHeaders = new LruCache(maxEntries)
  }

  /** The imported key and thumbprint for a canonical JWK, importing it on a miss. */
  resolve(canonical: string, alg: ProofAlgorithm): Promise<{ key: JoseCryptoKey; jkt: string }> {
    const cacheKey = `${alg}|${canonical}`
    let entry = this.#keys.get(cacheKey)
    if (!entry) {
      entry = importProofKey(canonical, alg)
      this.#keys.set(cacheKey, entry)
      // A failed import is not cached: the next proof with this key tries again.
      entry.catch(() => this.#keys.delete(cacheKey))
    }
    return entry
  }

  /** The number of cached keys. */
  get size(): number {
    return this.#keys.size
  }
}

async function importProofKey(
  canonical: string,
  alg: ProofAlgorithm,
): Promise<{ key: JoseCryptoKey; jkt: string }> {
  const [key, jkt] = await Promise.all([
    // Extractable (jose's default for a public key, stated because the server relies on it):
    // there is nothing to protect in a public key, and a runtime's own verifier may need a
    // handle to it, which Node deprecates for non-extractable keys (DEP0204).
    importJWK(JSON.parse(canonical) as JWK, alg, { extractable: true }),
    thumbprintOfCanonical(canonical),
  ])
  if (key instanceof Uint8Array) {
    throw new CallproofError('ERR_INVALID_PROOF', 'proof jwk is not an asymmetric public key')
  }
  return { key, jkt }
}

/**
 * What {@link verifyProof} checks a proof against.
 *
 * @example
 * ```ts
 * const options: VerifyProofOptions = { htm: 'POST', htu: 'https://drive.example/mcp', accessToken }
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-4.3
 */
export interface VerifyProofOptions {
  /** The request's HTTP method. */
  htm: string
  /** The resource URI (or request URL): compared after {@link normalizeHtu}. */
  htu: string
  /** When given, the proof's `ath` must be the SHA-256 of this token. */
  accessToken?: string
  /**
   * A required nonce: a string the proof's `nonce` must equal, or a check function. A failed
   * check throws {@link UseNonceError} (with `nonce` '' for a function: rethrow with the current
   * nonce).
   */
  nonce?: string | ((nonce: string | undefined) => boolean | Promise<boolean>)
  /** Allowed proof algorithms (default {@link PROOF_ALGORITHMS}). */
  algorithms?: readonly ProofAlgorithm[]
  /** How old `iat` may be, in seconds (default 60). */
  maxAgeSeconds?: number
  /** How far in the future `iat` may be, in seconds (default 5). */
  futureSkewSeconds?: number
  /** Milliseconds since the epoch (default `Date.now`). */
  clock?: Clock
  /**
   * Cache of imported keys and checked headers. Without one, each call imports the proof's key
   * afresh (nothing is kept between calls).
   */
  keyCache?: KeyCache
  /** How the signature is checked (default: Web Crypto's `crypto.subtle.verify`). */
  verifySignature?: ProofSignatureCheck
}

/**
 * A proof that passed {@link verifyProof}: the key's thumbprint and the claims the caller still
 * has to act on (`jti` for replay, `mcp` for the binding, `nonce`).
 *
 * @example
 * ```ts
 * if (proof.jkt !== token.claims.cnf.jkt) throw new CallproofError('ERR_INVALID_PROOF', 'key mismatch')
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-4.3
 */
export interface VerifiedProof {
  /** RFC 7638 thumbprint of the proof's public key. */
  readonly jkt: string
  /** The proof's unique identifier. */
  readonly jti: string
  /** Seconds since the epoch. */
  readonly iat: number
  /** The `mcp` claim as sent (untrusted until compared with {@link bindingsEqual}). */
  readonly mcp?: unknown
  /** The `nonce` claim as sent. */
  readonly nonce?: string
}

/**
 * What a verifier already knows about a request, so that {@link verifyProofWith} need not compute
 * it again: the token's `ath` (kept with the verified token) and the normalized `htu`.
 */
export interface KnownValues {
  /** {@link accessTokenHash} of `options.accessToken`. */
  readonly ath?: string
  /** {@link normalizeHtu} of `options.htu`. */
  readonly htu?: string
}

function invalid(message: string, cause?: unknown): CallproofError {
  return new CallproofError(
    'ERR_INVALID_PROOF',
    message,
    cause === undefined ? undefined : { cause },
  )
}

/**
 * Verifies a DPoP proof: header (`typ` dpop+jwt, `alg` in the allowlist, `jwk` a public key
 * only), signature, `jti`, `htm`, `htu`, `iat` window, `ath`, `nonce`. It does not compare the key
 * with the token's `cnf.jkt`, check the binding or record the `jti`: {@link createVerifier} does.
 * Every refusal is a {@link CallproofError} with code ERR_INVALID_PROOF (or ERR_USE_NONCE).
 *
 * @example
 * ```ts
 * const proof = await verifyProof(request.headers.get('dpop')!, {
 *   htm: request.method,
 *   htu: 'https://drive.example/mcp',
 *   accessToken,
 * })
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-4.3
 */
export async function verifyProof(
  proof: string,
  options: VerifyProofOptions,
): Promise<VerifiedProof> {
  return verifyProofWith(proof, options, {})
}

/**
 * JSON.parse of a base64url segment (already known to hold only base64url characters). An ASCII
 * payload, which every honest proof is, is parsed straight from the decoded binary string; any
 * other goes through the strict UTF-8 decoder, so invalid UTF-8 is still refused.
 */
function decodeJsonSegment(segment: string): unknown {
  const binary = atob(segment.replace(/-/g, '+').replace(/_/g, '/'))
  if (ASCII.test(binary)) return JSON.parse(binary)
  const bytes = new Uint8Array(binary.length)
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i)
  return JSON.parse(decoder.decode(bytes))
}

// eslint-disable-next-line no-control-regex -- every ASCII code point, control characters included
const ASCII = /^[\x00-\x7f]*$/

/**
 * Scratch space for the signing input of a proof (ASCII, at most MAX_PROOF_LENGTH bytes): a
 * buffer, not a cache (nothing in it is read again). Safe to reuse: `crypto.subtle.verify` takes
 * a copy of its data before it returns (W3C Web Crypto, "get a copy of the bytes held by the
 * data parameter"), so the next call may overwrite it.
 */
const signingScratch = new Uint8Array(MAX_PROOF_LENGTH)

/** The JWS signing input (header.payload) of a compact proof, as bytes, without allocating. */
function signingInput(proof: string, secondDot: number): Uint8Array<ArrayBuffer> {
  const { written } = encoder.encodeInto(proof.slice(0, secondDot), signingScratch)
  return signingScratch.subarray(0, written)
}

/**
 * Every header check that does not depend on the request: typ dpop+jwt, alg in the allowlist,
 * jwk a public key only that fits alg, no crit/b64; then the key, imported and thumbprinted.
 * The result is remembered in `cache` under the exact header segment.
 */
async function checkHeader(
  proof: string,
  headerSegment: string,
  algorithms: readonly ProofAlgorithm[],
  cache: KeyCache,
): Promise<CheckedHeader> {
  let header: Record<string, unknown>
  try {
    header = decodeProtectedHeader(proof) as Record<string, unknown>
  } catch (cause) {
    throw invalid('the DPoP proof header is not valid JSON', cause)
  }
  if (header.typ !== PROOF_TYP) {
    throw invalid(`proof typ ${short(header.typ)} is not ${PROOF_TYP}`)
  }
  const alg = header.alg
  if (typeof alg !== 'string' || !(algorithms as readonly string[]).includes(alg)) {
    throw invalid(
      `proof alg ${short(alg)} is not allowed (expected one of ${algorithms.join(' ')})`,
    )
  }
  const jwk = header.jwk
  if (!isObject(jwk)) throw invalid('the proof header has no jwk')
  for (const member of PRIVATE_JWK_MEMBERS) {
    // A private key in the header means the client leaked it; refuse rather than "use the public part".
    if (member in jwk) throw invalid(`proof jwk contains the private member ${member}`)
  }
  if (!jwkFitsAlg(jwk, alg as ProofAlgorithm)) {
    throw invalid(`proof jwk ${short(jwk.kty)}/${short(jwk.crv)} does not fit alg ${alg}`)
  }
  const canonical = canonicalPublicJwk(jwk)
  let resolved: { key: JoseCryptoKey; jkt: string }
  try {
    resolved = await cache.resolve(canonical, alg as ProofAlgorithm)
  } catch (cause) {
    if (cause instanceof CallproofError) throw cause
    throw invalid('proof jwk is not a valid public key', cause)
  }
  // Header members that change what is signed or demand extensions we do not know are refused.
  if (header.crit !== undefined || header.b64 !== undefined) {
    throw invalid('proof header must not carry crit or b64')
  }
  const checked: CheckedHeader = Object.freeze({ alg: alg as ProofAlgorithm, ...resolved })
  checkedHeadersOf(cache).set(headerSegment, checked)
  return checked
}

/**
 * {@link verifyProof} with what the verifier already knows (`known`): the token's `ath` and the
 * normalized `htu`. Internal to core (the verifier's entry point), not exported by the package.
 */
export async function verifyProofWith(
  proof: string,
  options: VerifyProofOptions,
  known: KnownValues,
): Promise<VerifiedProof> {
  const algorithms = options.algorithms ?? PROOF_ALGORITHMS
  const clock = options.clock ?? Date.now
  const maxAge = options.maxAgeSeconds ?? 60
  const futureSkew = options.futureSkewSeconds ?? 5

  if (options.verifySignature !== undefined && typeof options.verifySignature !== 'function') {
    throw new CallproofError(
      'ERR_INVALID_OPTIONS',
      'verifySignature must be a function (data, signature, key, alg) => boolean',
    )
  }
  if (typeof proof !== 'string' || proof.length === 0) throw invalid('the DPoP proof is missing')
  if (proof.length > MAX_PROOF_LENGTH || !COMPACT_JWS.test(proof)) {
    throw invalid('the DPoP proof is not a compact JWS')
  }

  const firstDot = proof.indexOf('.')
  const secondDot = proof.indexOf('.', firstDot + 1)
  // Without a cache of the caller's, one for this call only: nothing outlives the call.
  const cache = options.keyCache ?? new KeyCache(1)
  const headerSegment = proof.slice(0, firstDot)
  const checked =
    checkedHeadersOf(cache).get(headerSegment) ??
    (await checkHeader(proof, headerSegment, algorithms, cache))
  const { alg, key, jkt } = checked
  // Re-checked on every call: a cached header may have been accepted under another allowlist.
  if (!(algorithms as readonly string[]).includes(alg)) {
    throw invalid(`proof alg ${alg} is not allowed (expected one of ${algorithms.join(' ')})`)
  }

  // The signature is checked with Web Crypto directly on the key imported (and cached) through
  // jose: jose's generic JWS path costs about half a signature verification more per proof, and
  // a proof needs none of its generality.
  let payload: Record<string, unknown>
  let signature: Uint8Array
  try {
    payload = decodeJsonSegment(proof.slice(firstDot + 1, secondDot)) as Record<string, unknown>
    signature = base64url.decode(proof.slice(secondDot + 1))
  } catch (cause) {
    throw invalid('the DPoP proof payload or signature is not valid base64url JSON', cause)
  }
  if (!isObject(payload)) throw invalid('the DPoP proof payload is not a JSON object')
  if (signature.length !== SIGNATURE_LENGTH) {
    throw invalid('the DPoP proof signature has the wrong length')
  }
  let valid: boolean
  try {
    valid =
      options.verifySignature === undefined
        ? // The shared scratch is safe here: Web Crypto copies its input before it returns.
          await webCryptoProofVerification(
            signingInput(proof, secondDot),
            signature as Uint8Array<ArrayBuffer>,
            key as CryptoKey,
            alg,
          )
        : // A fresh copy, not the shared scratch: a function that awaits before reading its
          // input would otherwise read the next request's bytes (another proof's signing input
          // under this proof's signature).
          (await options.verifySignature(
            encoder.encode(proof.slice(0, secondDot)),
            signature as Uint8Array<ArrayBuffer>,
            key as CryptoKey,
            alg,
          )) === true
  } catch (cause) {
    throw invalid('the DPoP proof signature could not be verified', cause)
  }
  if (!valid) throw invalid('the DPoP proof signature verification failed')

  const jti = payload.jti
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > MAX_JTI_LENGTH) {
    throw invalid('proof jti is missing or invalid')
  }
  if (payload.htm !== options.htm) {
    throw invalid(`proof htm ${short(payload.htm)} does not match request method ${options.htm}`)
  }
  checkHtu(payload.htu, options.htu, known.htu)
  const iat = payload.iat
  if (typeof iat !== 'number' || !Number.isFinite(iat)) throw invalid('proof iat is missing')
  const now = clock() / 1000
  // Both bounds name the tolerance, so a client with a skewed clock can see why it was refused.
  if (iat < now - maxAge) {
    throw invalid(
      `proof iat is too old: ${Math.floor(now - iat)} s in the past (at most ${maxAge} s allowed)`,
    )
  }
  if (iat > now + futureSkew) {
    throw invalid(
      `proof iat is too far in the future: ${Math.ceil(iat - now)} s ahead (clock skew tolerance ${futureSkew} s)`,
    )
  }
  // RFC 9449 needs neither; when a client adds them they still mean what RFC 7519 says.
  if (payload.exp !== undefined && (typeof payload.exp !== 'number' || payload.exp <= now)) {
    throw invalid('proof exp has passed')
  }
  if (
    payload.nbf !== undefined &&
    (typeof payload.nbf !== 'number' || payload.nbf > now + futureSkew)
  ) {
    throw invalid('proof nbf is in the future')
  }
  if (options.accessToken !== undefined) {
    const ath = known.ath ?? (await accessTokenHash(options.accessToken))
    if (payload.ath !== ath) throw invalid('proof ath does not match the access token')
  }
  const nonce = payload.nonce
  if (nonce !== undefined && typeof nonce !== 'string') throw invalid('proof nonce is not a string')
  if (options.nonce !== undefined) {
    if (typeof options.nonce === 'string') {
      if (nonce !== options.nonce) throw new UseNonceError(options.nonce)
    } else if (!(await options.nonce(nonce))) {
      throw new UseNonceError('')
    }
  }

  const result: { jkt: string; jti: string; iat: number; mcp?: unknown; nonce?: string } = {
    jkt,
    jti,
    iat,
  }
  if (payload.mcp !== undefined) result.mcp = payload.mcp
  if (nonce !== undefined) result.nonce = nonce
  return Object.freeze(result)
}
