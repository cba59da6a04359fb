/**
 * DPoP proofs (RFC 9449) that carry callproof's `mcp` call-binding claim: creation (client) and
 * verification (server).
 *
 * @module
 */

import { base64url, decodeProtectedHeader, importJWK } from 'jose'
import type { CryptoKey as JoseCryptoKey, JWK, JWTPayload } from 'jose'
import type { McpBinding } from './binding.js'
import { LruCache } from './cache.js'
import { COMPACT_JWS, isObject, sha256Base64url } from './encoding.js'
import { CallproofError, UseNonceError } from './errors.js'
import { canonicalPublicJwk, thumbprintOfCanonical } from './thumbprint.js'

/**
 * Milliseconds since the epoch (like `Date.now`). Injected so that tests and replays of
 * recorded traffic can fix the time; JWT claims are seconds.
 *
 * @example
 * ```ts
 * const clock: Clock = () => Date.parse('2026-01-01T00:00:00Z')
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc7519#section-2
 */
export type Clock = () => number

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

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'priv']
const MAX_PROOF_LENGTH = 8192
const MAX_JTI_LENGTH = 512

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

const publicJwkCache = new WeakMap<CryptoKey, JWK>()

async function publicJwkOf(key: CryptoKey): Promise<JWK> {
  let jwk = publicJwkCache.get(key)
  if (!jwk) {
    const full = (await crypto.subtle.exportKey('jwk', key)) as Record<string, string>
    // Only the public members: a proof header must never carry private key material.
    const members = full.kty === 'EC' ? ['kty', 'crv', 'x', 'y'] : ['kty', 'crv', 'x']
    const publicJwk: Record<string, string> = {}
    for (const m of members) if (full[m] !== undefined) publicJwk[m] = full[m]
    jwk = publicJwk as JWK
    publicJwkCache.set(key, jwk)
  }
  return jwk
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
  // The compact JWS is assembled here and signed with Web Crypto directly (RFC 7515 §3.1): the
  // protected header is the same for every proof of a key, so it is encoded once per key, and
  // jose's general JWT builder cost about as much again as the binding itself on every call.
  const header = await protectedHeaderOf(keyPair.publicKey, alg)
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
  // ES256 (IEEE P1363 r||s) and Ed25519 signatures are both exactly 64 bytes; a signing function
  // that returns DER or anything else would make proofs every verifier refuses.
  if (signature.length !== 64) {
    throw new CallproofError(
      'ERR_INVALID_OPTIONS',
      `the proof signing function returned ${signature.length} bytes (expected a 64-byte ${alg} signature)`,
    )
  }
  return `${signingInput}.${base64url.encode(signature)}`
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
 */
export interface CreateProofOptions {
  /** The JWS algorithm; default from the key (ES256 for P-256, EdDSA for Ed25519). */
  alg?: ProofAlgorithm
  /** Milliseconds since the epoch for `iat` (default `Date.now`). */
  clock?: Clock
  /** How the signing input is signed (default: Web Crypto's `crypto.subtle.sign`). */
  sign?: ProofSigningFunction
}

/** The Web Crypto parameters of a proof algorithm's signature (ECDSA with SHA-256, or Ed25519). */
function webCryptoParams(alg: ProofAlgorithm): EcdsaParams | Algorithm {
  return alg === 'ES256' ? { name: 'ECDSA', hash: 'SHA-256' } : { name: 'Ed25519' }
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

const protectedHeaders = new WeakMap<CryptoKey, Map<ProofAlgorithm, string>>()

/** base64url of the proof's protected header for `publicKey` signing with `alg`, made once. */
async function protectedHeaderOf(publicKey: CryptoKey, alg: ProofAlgorithm): Promise<string> {
  let byAlg = protectedHeaders.get(publicKey)
  let header = byAlg?.get(alg)
  if (header === undefined) {
    const jwk = await publicJwkOf(publicKey)
    const fits =
      alg === 'ES256'
        ? jwk.kty === 'EC' && jwk.crv === 'P-256'
        : jwk.kty === 'OKP' && jwk.crv === 'Ed25519'
    if (!fits) {
      throw new CallproofError(
        'ERR_INVALID_OPTIONS',
        `proof alg ${String(alg)} does not fit the key (${String(jwk.kty)}/${String(jwk.crv)})`,
      )
    }
    header = base64url.encode(JSON.stringify({ alg, typ: 'dpop+jwt', jwk }))
    if (!byAlg) protectedHeaders.set(publicKey, (byAlg = new Map()))
    byAlg.set(alg, header)
  }
  return header
}

/** What a checked proof header resolves to. */
interface CheckedHeader {
  readonly alg: ProofAlgorithm
  readonly key: JoseCryptoKey
  readonly jkt: string
}

/**
 * Per key cache: proof headers (their exact base64url segment) that already passed every check
 * that does not depend on options (typ, jwk public-only and fitting alg, no crit/b64), with their
 * key. A client's header is the same on every proof, so this saves decoding and checking it
 * again; the alg allowlist is still checked per call. Module-private, so that no caller can put
 * an entry in it that did not pass the checks.
 */
const checkedHeaders = new WeakMap<KeyCache, LruCache<string, CheckedHeader>>()

/**
 * A bounded cache of imported proof public keys, keyed by their canonical JWK (RFC 7638 input),
 * so a returning client's key is imported and thumbprinted once. Forgetting an entry is safe.
 *
 * @example
 * ```ts
 * const keyCache = new KeyCache(10_000)
 * await verifyProof(proof, { htm, htu, keyCache })
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc7638#section-3
 */
export class KeyCache {
  readonly #lru: LruCache<string, Promise<{ key: JoseCryptoKey; jkt: string }>>

  /** @param maxEntries - the most keys kept (default 10 000) */
  constructor(maxEntries = 10_000) {
    this.#lru = new LruCache(maxEntries)
    checkedHeaders.set(this, new LruCache(maxEntries))
  }

  /** The imported key and thumbprint for a canonical JWK, importing it on a miss. */
  resolve(canonical: string, alg: ProofAlgorithm): Promise<{ key: JoseCryptoKey; jkt: string }> {
    const cacheKey = `${alg}|${canonical}`
    let entry = this.#lru.get(cacheKey)
    if (!entry) {
      entry = importProofKey(canonical, alg)
      this.#lru.set(cacheKey, entry)
      // A failed import is not cached: the next proof with this key tries again.
      entry.catch(() => this.#lru.delete(cacheKey))
    }
    return entry
  }

  /** The number of cached keys. */
  get size(): number {
    return this.#lru.size
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
  /** Cache of imported keys (default: a module-wide cache of 10 000 keys). */
  keyCache?: KeyCache
  /** How the signature is checked (default: Web Crypto's `crypto.subtle.verify`). */
  verifySignature?: ProofSignatureCheck
}

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

const defaultKeyCache = new KeyCache()

/**
 * `url` as an `htu` is compared: scheme and host lower case, default port dropped, percent
 * encoding normalized (RFC 3986 §6.2.2), dot segments resolved, no userinfo, query or fragment.
 * Throws ERR_INVALID_PROOF for something that is not an absolute URL.
 *
 * @example
 * ```ts
 * normalizeHtu('HTTPS://Drive.Example:443/mcp?x=1') // 'https://drive.example/mcp'
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-4.3
 * @see https://www.rfc-editor.org/rfc/rfc3986#section-6.2.2
 */
export function normalizeHtu(url: string | URL): string {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch (cause) {
    throw new CallproofError('ERR_INVALID_PROOF', 'htu is not an absolute URL', { cause })
  }
  const path = parsed.pathname.replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) => {
    const char = String.fromCharCode(parseInt(hex, 16))
    return /[A-Za-z0-9\-._~]/.test(char) ? char : `%${hex.toUpperCase()}`
  })
  return `${parsed.protocol}//${parsed.host}${path}`
}

let lastExpected: { url: string; normalized: string } | undefined

/**
 * True when `url`'s authority has userinfo (`user@`, `user:pass@`, or an empty `@`), read as the
 * WHATWG URL parser reads it: leading C0 controls and spaces dropped, tabs and newlines removed
 * anywhere, and a backslash ending the authority like a slash.
 */
function hasUserinfo(url: string): boolean {
  // eslint-disable-next-line no-control-regex
  const cleaned = url.replace(/[\t\n\r]/g, '').replace(/^[\x00-\x20]+/, '')
  return /^[A-Za-z][A-Za-z0-9+.-]*:[\\/]*[^\\/?#]*@/.test(cleaned)
}

/** normalizeHtu of the (trusted, rarely changing) expected URL, remembered for the next call. */
function normalizedExpectedHtu(url: string): string {
  if (lastExpected?.url !== url) lastExpected = { url, normalized: normalizeHtu(url) }
  return lastExpected.normalized
}

function invalid(message: string, cause?: unknown): CallproofError {
  return new CallproofError(
    'ERR_INVALID_PROOF',
    message,
    cause === undefined ? undefined : { cause },
  )
}

function short(value: unknown): string {
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value))
  return text.length > 120 ? `${text.slice(0, 120)}…` : text
}

/**
 * The `ath` claim for an access token: base64url(SHA-256(ASCII(token))), which ties a proof to
 * the one token it travels with.
 *
 * @example
 * ```ts
 * await accessTokenHash('Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU') // 'fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo'
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-4.2
 */
export function accessTokenHash(accessToken: string): Promise<string> {
  // A client sends many requests with one token and a server sees it on every call: the last
  // token's hash is kept (a digest of a value the caller already holds, so nothing secret leaks).
  if (lastAth?.token !== accessToken)
    lastAth = { token: accessToken, ath: sha256Base64url(accessToken) }
  return lastAth.ath
}

let lastAth: { token: string; ath: Promise<string> } | undefined

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
  return verifyProofWith(proof, options, undefined)
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
 * Scratch space for the signing input of a proof (ASCII, at most MAX_PROOF_LENGTH bytes). Safe to
 * reuse: `crypto.subtle.verify` takes a copy of its data before it returns (W3C Web Crypto,
 * "get a copy of the bytes held by the data parameter"), so the next call may overwrite it.
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
 * The result is remembered under the exact header segment.
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
  if (header.typ !== 'dpop+jwt') {
    throw invalid(`proof typ ${short(header.typ)} is not dpop+jwt`)
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
  if (
    alg === 'ES256'
      ? jwk.kty !== 'EC' || jwk.crv !== 'P-256'
      : jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519'
  ) {
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
  checkedHeaders.get(cache)!.set(headerSegment, checked)
  return checked
}

/** {@link verifyProof} with a precomputed `ath` (the verifier caches it with the token). */
export async function verifyProofWith(
  proof: string,
  options: VerifyProofOptions,
  expectedAth: string | undefined,
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
  const cache = options.keyCache ?? defaultKeyCache
  const headerSegment = proof.slice(0, firstDot)
  const checked =
    checkedHeaders.get(cache)!.get(headerSegment) ??
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
  // ES256 (IEEE P1363 r||s) and Ed25519 signatures are both exactly 64 bytes.
  if (signature.length !== 64) throw invalid('the DPoP proof signature has the wrong length')
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
  const htu = payload.htu
  if (typeof htu !== 'string') throw invalid('proof htu is missing')
  if (htu.includes('?') || htu.includes('#')) {
    throw invalid('proof htu must not carry a query or fragment')
  }
  if (hasUserinfo(htu)) {
    // http://evil@host/mcp normalizes to http://host/mcp; refused rather than ignored, so that a
    // proof cannot differ from its canonical form (and no reader of logs is misled by it).
    throw invalid('proof htu must not carry userinfo')
  }
  const expectedHtu = normalizedExpectedHtu(options.htu)
  // Fast path: an honest client sends the resource URI exactly; anything else is normalized.
  if (htu !== expectedHtu && htu !== options.htu) {
    let actualHtu: string
    try {
      actualHtu = normalizeHtu(htu)
    } catch {
      throw invalid(`proof htu ${short(htu)} is not an absolute URL`)
    }
    if (actualHtu !== expectedHtu) {
      throw invalid(`proof htu ${short(htu)} does not match request URL ${expectedHtu}`)
    }
  }
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
    const ath = expectedAth ?? (await accessTokenHash(options.accessToken))
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
