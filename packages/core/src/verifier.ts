/**
 * The whole per-request verification, in the order the protocol fixes: scheme → token → proof
 * header/signature → htm/htu → iat window → ath → jkt = cnf.jkt → nonce → binding = message →
 * replay. Web platform APIs only, so the server middleware and the benchmark share it.
 *
 * @module
 */

import { bindingFor, bindingMismatch, bindingsEqual, describeBinding } from './binding.js'
import type { McpBinding } from './binding.js'
import { LruCache } from './cache.js'
import { COMPACT_JWS, isObject } from './encoding.js'
import { CallproofError, UseNonceError } from './errors.js'
import type { Caller } from './caller.js'
import type { Clock } from './clock.js'
import { normalizeHtu } from './htu.js'
import { PROOF_ALGORITHMS, accessTokenHash } from './proof-jws.js'
import type { ProofAlgorithm } from './proof-jws.js'
import { KeyCache, verifyProofWith } from './proof-verify.js'
import type { ProofSignatureCheck, VerifiedProof } from './proof-verify.js'
import type { ReplayStore } from './replay.js'
import {
  TOKEN_ALGORITHMS,
  assertTokenAlgorithms,
  checkAccessTokenClaims,
  verifyAccessToken,
} from './token.js'
import type { AccessTokenClaims, KeyResolver, VerifiedToken } from './token.js'

/**
 * Server-provided DPoP nonces (RFC 9449 §8): the current nonce to hand out, and the check of
 * the nonce a proof carries.
 *
 * @example
 * ```ts
 * const nonce: NonceSource = { current: () => n, check: (v) => v === n }
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-8
 */
export interface NonceSource {
  /** The nonce to hand out now (`DPoP-Nonce`). */
  current(): Promise<string> | string
  /** True when a proof carrying `nonce` may be accepted. */
  check(nonce: string | undefined): Promise<boolean> | boolean
  /**
   * The moment (ms since the epoch) from which `check` stops accepting `nonce`, if known. The
   * verifier then keeps a proof's replay entry only until the earlier of this plus the clock skew
   * and the end of the `iat` window: once its nonce is stale the proof is refused anyway, so the
   * replay store (and its memory) is bounded by the nonce window (RFC 9449 §11.1). The skew is
   * added because the store may expire entries by a clock ahead of the verifier's.
   */
  expiresAt?(nonce: string): number | undefined
}

/**
 * Options of {@link createVerifier}, validated when the verifier is created.
 *
 * @example
 * ```ts
 * const options: VerifierOptions = {
 *   resource: 'https://drive.example/mcp',
 *   issuers: ['https://as.example'],
 *   keys: createRemoteJWKSet(new URL('https://as.example/jwks')),
 *   replay: new MemoryReplayStore(),
 * }
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-7.1
 */
export interface VerifierOptions {
  /** This server's resource URI: the token's `aud` must contain it, the proof's `htu` equal it. */
  resource: string
  /** Trusted token issuers. */
  issuers: readonly string[]
  /** Resolves token signing keys. */
  keys: KeyResolver
  /** Proof algorithms (default ES256, EdDSA, Ed25519). */
  algorithms?: readonly ProofAlgorithm[]
  /** Token algorithms, asymmetric only (default {@link TOKEN_ALGORITHMS}). */
  tokenAlgorithms?: readonly string[]
  /** How old a proof's `iat` may be, seconds (default 60). */
  proofMaxAgeSeconds?: number
  /** Clock skew tolerated: proof `iat` in the future, token `exp`/`nbf`/`iat`; seconds (default 5). */
  clockSkewSeconds?: number
  /** Where proofs are recorded as used. */
  replay: ReplayStore
  /** Milliseconds since the epoch (default `Date.now`). */
  clock?: Clock
  /** Require server-provided nonces. */
  nonce?: NonceSource
  /** Accept tokens without `typ` (see {@link VerifyAccessTokenOptions.allowMissingTyp}). */
  allowMissingTyp?: boolean
  /** Most verified tokens cached (default 10 000). (Addition to the contract.) */
  tokenCacheSize?: number
  /** Most imported proof keys cached (default 10 000). (Addition to the contract.) */
  keyCacheSize?: number
  /** How proof signatures are checked (default Web Crypto; see {@link ProofSignatureCheck}). */
  verifySignature?: ProofSignatureCheck
  /**
   * Opaque access tokens (RFC 7662 introspection or any other lookup): called only for a token
   * that is not a compact JWS, it returns the token's claims (or throws a CallproofError, e.g.
   * ERR_INVALID_TOKEN for an inactive token). The claims then go through the same checks as a
   * JWT's: `iss` trusted, `aud` containing `resource`, `exp`, `iat`, `sub`, `client_id`, `jti`
   * and `cnf.jkt` required. The answers are not cached by the verifier (a revocation the lookup
   * learns of must take effect); cache inside the function if needed.
   */
  opaqueTokens?: (token: string) => Promise<AccessTokenClaims>
}

declare const verifiedCallBrand: unique symbol

/**
 * A call that passed {@link createVerifier}'s `verify`. Only the verifier produces one (the brand
 * cannot be written by hand, and {@link isVerifiedCall} checks the real object), so code that
 * takes a `VerifiedCall` cannot be handed an unverified caller.
 *
 * @example
 * ```ts
 * function runTool(call: VerifiedCall) { audit(call.caller.sub) }
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-7.1
 */
export interface VerifiedCall {
  readonly [verifiedCallBrand]: true
  readonly caller: Caller
  readonly token: VerifiedToken
  readonly proof: VerifiedProof
  /**
   * The binding of the message: what the proof was checked against, or, for an
   * {@link VerifiedCall.unbound} call, what the proof was NOT checked against (absent for
   * GET/DELETE).
   */
  readonly binding?: McpBinding
  /**
   * True when the request carries a message but its proof has no `mcp` claim, accepted only
   * because {@link VerifyRequest.allowUnbound} was set: the proof is not bound to this message,
   * and the caller must refuse the call unless its target accepts unbound proofs.
   */
  readonly unbound?: true
  /** The one parsed body the binding was checked on: hand this very value to the SDK. */
  readonly message?: unknown
  /**
   * Until when this verifier would still accept this call's access token, in milliseconds since
   * the epoch: `(exp + clockSkewSeconds) * 1000`, exclusive (the token is refused from this moment
   * on). Whatever must be remembered for as long as the token can be presented again (a consumed
   * one-time approval, a session bound to the token) must be kept at least this long; take it
   * from here rather than recomputing it, so that it always uses the verifier's own tolerance.
   * (Addition to the contract.)
   */
  readonly acceptedUntil: number
}

/**
 * The verifier {@link createVerifier} returns.
 *
 * @example
 * ```ts
 * const call = await verifier.verify({ method: req.method, url: req.url, headers: req.headers, message })
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-7.1
 */
export interface Verifier {
  /** Verifies one request; throws a {@link CallproofError} for every refusal. */
  verify(request: VerifyRequest): Promise<VerifiedCall>
}

/**
 * One request as the verifier sees it.
 *
 * @example
 * ```ts
 * const request: VerifyRequest = { method: 'POST', url: c.req.url, headers: c.req.raw.headers, message }
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-7.1
 */
export interface VerifyRequest {
  method: string
  url: string
  /** The request's headers (only `get` is used: a `Headers`, or an adapter's cheaper view). */
  headers: Pick<Headers, 'get'>
  /** The ONE parsed body (absent for GET/DELETE). */
  message?: unknown
  /**
   * Called with the binding of `message` once the verifier has computed it (only for a valid
   * token, at the binding check, before the proof's `mcp` claim is compared with it), so that a
   * refusal from there on (binding mismatch, replay) can be recorded with the call it was for
   * without computing the argument digest a second time. (Addition to the contract.)
   */
  onBinding?: (binding: McpBinding) => void
  /**
   * Accept a POST proof without an `mcp` claim (a standard RFC 9449 proof) instead of refusing
   * it with ERR_BINDING_MISMATCH: the call then reports {@link VerifiedCall.unbound}, and the
   * caller MUST refuse it (ERR_BINDING_REQUIRED) unless the policy of what the message calls
   * allows unbound proofs, which is known only once the message is looked at. Every other check
   * stays, and a proof whose `mcp` claim is present but wrong is still refused. (Addition to the
   * contract.)
   */
  allowUnbound?: boolean
}

const verifiedCalls = new WeakSet<object>()

/**
 * True only for an object {@link createVerifier} produced (not a look-alike built by hand).
 *
 * @example
 * ```ts
 * if (!isVerifiedCall(c.var.call)) throw new Error('unverified call reached a tool')
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-7.1
 */
export function isVerifiedCall(value: unknown): value is VerifiedCall {
  return typeof value === 'object' && value !== null && verifiedCalls.has(value)
}

function options(message: string): CallproofError {
  return new CallproofError('ERR_INVALID_OPTIONS', `createVerifier: ${message}`)
}

function validate(o: VerifierOptions): void {
  if (!isObject(o)) throw options('options must be an object')
  if (typeof o.resource !== 'string') throw options('resource must be a string URL')
  let url: URL
  try {
    url = new URL(o.resource)
  } catch {
    throw options(`resource ${o.resource} is not an absolute URL`)
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw options(`resource ${o.resource} must be an http(s) URL`)
  }
  if (url.search || url.hash || o.resource.includes('#') || o.resource.includes('?')) {
    throw options(`resource ${o.resource} must not carry a query or fragment`)
  }
  if (!Array.isArray(o.issuers) || o.issuers.length === 0) {
    throw options('issuers must be a non-empty array of issuer identifiers')
  }
  for (const iss of o.issuers) {
    if (typeof iss !== 'string' || iss.length === 0)
      throw options('every issuer must be a non-empty string')
  }
  if (typeof o.keys !== 'function')
    throw options('keys must be a key resolver function (e.g. createRemoteJWKSet)')
  if (!isObject(o.replay) || typeof (o.replay as ReplayStore).consume !== 'function') {
    throw options('replay must be a ReplayStore (e.g. new MemoryReplayStore())')
  }
  if (o.algorithms !== undefined) {
    if (!Array.isArray(o.algorithms) || o.algorithms.length === 0) {
      throw options('algorithms must be a non-empty array')
    }
    for (const alg of o.algorithms) {
      if (!PROOF_ALGORITHMS.includes(alg)) {
        throw options(
          `proof algorithm ${String(alg)} is not supported (expected ${PROOF_ALGORITHMS.join(', ')})`,
        )
      }
    }
  }
  if (o.tokenAlgorithms !== undefined) {
    try {
      assertTokenAlgorithms(o.tokenAlgorithms)
    } catch (err) {
      throw options((err as Error).message)
    }
  }
  const seconds = (name: keyof VerifierOptions, min: number, max: number): void => {
    const v = o[name]
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max)) {
      throw options(`${name} must be a number of seconds from ${min} to ${max}`)
    }
  }
  seconds('proofMaxAgeSeconds', 1, 3600)
  seconds('clockSkewSeconds', 0, 300)
  if (o.clock !== undefined && typeof o.clock !== 'function')
    throw options('clock must be a function returning ms')
  if (
    o.nonce !== undefined &&
    (!isObject(o.nonce) ||
      typeof (o.nonce as NonceSource).current !== 'function' ||
      typeof (o.nonce as NonceSource).check !== 'function')
  ) {
    throw options('nonce must be a NonceSource with current() and check()')
  }
  if (o.nonce?.expiresAt !== undefined && typeof o.nonce.expiresAt !== 'function') {
    throw options('nonce.expiresAt must be a function when present')
  }
  if (o.opaqueTokens !== undefined && typeof o.opaqueTokens !== 'function') {
    throw options('opaqueTokens must be a function (token) => Promise<AccessTokenClaims>')
  }
  if (o.verifySignature !== undefined && typeof o.verifySignature !== 'function') {
    throw options('verifySignature must be a function (data, signature, key, alg) => boolean')
  }
  if (o.allowMissingTyp !== undefined && typeof o.allowMissingTyp !== 'boolean') {
    throw options('allowMissingTyp must be a boolean')
  }
  for (const name of ['tokenCacheSize', 'keyCacheSize'] as const) {
    const v = o[name]
    if (v !== undefined && (!Number.isInteger(v) || v < 1))
      throw options(`${name} must be a positive integer`)
  }
}

interface CachedToken {
  verified: VerifiedToken
  ath: string
}

const DPOP_CREDENTIALS = /^DPoP +([A-Za-z0-9\-._~+/]+=*)$/i
const BEARER = /^Bearer(\s|$)/i

/**
 * The clock skew {@link createVerifier} tolerates when `clockSkewSeconds` is not given, in
 * seconds. How long a verified call's token stays acceptable need not be recomputed from it:
 * {@link VerifiedCall.acceptedUntil} is that moment, computed with the verifier's own tolerance.
 *
 * @example
 * ```ts
 * const skew = options.clockSkewSeconds ?? DEFAULT_CLOCK_SKEW_SECONDS
 * ```
 */
export const DEFAULT_CLOCK_SKEW_SECONDS = 5

/**
 * Creates the per-request verifier. Options are validated now (ERR_INVALID_OPTIONS with a clear
 * message), not on the first request. `verify` checks, in order: `Authorization: DPoP <token>`
 * (Bearer → ERR_BEARER_NOT_ALLOWED, nothing → ERR_NO_CREDENTIALS), the token, exactly one `DPoP`
 * proof, its header and signature, `htm`/`htu` (against `resource`), `iat` window, `ath`, key
 * thumbprint = `cnf.jkt`, nonce, the `mcp` binding against `message` (none allowed without a
 * body), and replay (key `dpop:<jkt>:<jti>` until `iat` + max age + skew, or with nonces until
 * the nonce's expiry + skew if that is earlier).
 *
 * Verified tokens are cached by their exact string until `exp` (re-checked against the clock on
 * every use), and imported proof keys by their canonical JWK, so a call costs about one
 * signature verification.
 *
 * @example
 * ```ts
 * const verifier = createVerifier({
 *   resource: 'https://drive.example/mcp',
 *   issuers: ['https://as.example'],
 *   keys: createRemoteJWKSet(new URL('https://as.example/jwks')),
 *   replay: new MemoryReplayStore(),
 * })
 * const call = await verifier.verify({ method: 'POST', url: req.url, headers: req.headers, message })
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-7.1
 * @see https://www.rfc-editor.org/rfc/rfc9068#section-4
 */
export function createVerifier(verifierOptions: VerifierOptions): Verifier {
  validate(verifierOptions)
  const o = verifierOptions
  const resource = o.resource
  const htu = normalizeHtu(resource)
  const clock = o.clock ?? Date.now
  const skew = o.clockSkewSeconds ?? DEFAULT_CLOCK_SKEW_SECONDS
  const maxAge = o.proofMaxAgeSeconds ?? 60
  const algorithms = o.algorithms ?? PROOF_ALGORITHMS
  const keyCache = new KeyCache(o.keyCacheSize ?? 10_000)
  const tokenCache = new LruCache<string, CachedToken>(o.tokenCacheSize ?? 10_000)
  const tokenOptions = {
    issuers: [...o.issuers],
    keys: o.keys,
    audience: resource,
    algorithms: o.tokenAlgorithms ?? TOKEN_ALGORITHMS,
    clockToleranceSeconds: skew,
    clock,
    allowMissingTyp: o.allowMissingTyp ?? false,
  }

  /** The cached verified token, synchronously (no promise on the hot path), or undefined. */
  function cachedToken(accessToken: string): CachedToken | undefined {
    const cached = tokenCache.get(accessToken)
    if (cached) {
      // The cache saves the signature check, never the expiry check.
      if (cached.verified.claims.exp + skew > clock() / 1000) return cached
      tokenCache.delete(accessToken)
      throw new CallproofError(
        'ERR_INVALID_TOKEN',
        `the access token has expired (exp has passed, clock skew tolerance ${skew} s)`,
      )
    }
    return undefined
  }

  async function token(accessToken: string): Promise<CachedToken> {
    if (o.opaqueTokens !== undefined && !COMPACT_JWS.test(accessToken)) {
      return { verified: await opaque(accessToken), ath: await accessTokenHash(accessToken) }
    }
    const verified = await verifyAccessToken(accessToken, tokenOptions)
    const entry = { verified, ath: await accessTokenHash(accessToken) }
    tokenCache.set(accessToken, entry)
    return entry
  }

  /** An opaque token's claims from `opaqueTokens`, through the same claim checks as a JWT's. */
  async function opaque(accessToken: string): Promise<VerifiedToken> {
    let claims: AccessTokenClaims
    try {
      claims = await o.opaqueTokens!(accessToken)
    } catch (cause) {
      if (cause instanceof CallproofError) throw cause
      // The lookup failed, not the token: fail closed with 503, never admit the call.
      throw new CallproofError('ERR_STORE_UNAVAILABLE', 'the opaque token could not be looked up', {
        cause,
      })
    }
    // A copy, so that freezing the verified claims never freezes the caller's object.
    let copy: unknown
    try {
      copy = structuredClone(claims)
    } catch (cause) {
      throw new CallproofError('ERR_INVALID_TOKEN', 'the opaque token claims are not plain data', {
        cause,
      })
    }
    return checkAccessTokenClaims(copy as Record<string, unknown>, tokenOptions)
  }

  /**
   * Until when the proof's `jkt`+`jti` must be remembered: the end of its `iat` window, or, with
   * nonces, the moment its nonce goes stale if that is earlier (after that it is refused anyway).
   * Both ends carry the clock skew: the replay store expires entries by its own clock (another
   * instance's, or Redis'), which may run up to the tolerance ahead of this verifier's, and an
   * entry it drops while this verifier still accepts the proof lets the proof be used twice.
   */
  function replayExpiry(proof: VerifiedProof): number {
    const windowEnd = (proof.iat + maxAge + skew) * 1000
    if (o.nonce?.expiresAt === undefined || proof.nonce === undefined) return windowEnd
    const nonceEnd = o.nonce.expiresAt(proof.nonce)
    return typeof nonceEnd === 'number' && Number.isFinite(nonceEnd)
      ? Math.min(windowEnd, nonceEnd + skew * 1000)
      : windowEnd
  }

  async function verify(request: VerifyRequest): Promise<VerifiedCall> {
    const headers = request.headers
    // 1. scheme
    const authorization = headers.get('authorization')
    if (authorization === null || authorization.trim() === '') {
      throw new CallproofError('ERR_NO_CREDENTIALS', 'the request carries no access token')
    }
    if (BEARER.test(authorization)) {
      // A DPoP-bound token sent as Bearer has shed its proof: whoever copied it could use it.
      throw new CallproofError(
        'ERR_BEARER_NOT_ALLOWED',
        'the Bearer scheme is not accepted; send the token as Authorization: DPoP <token> with a DPoP proof',
      )
    }
    const credentials = DPOP_CREDENTIALS.exec(authorization)
    if (!credentials) {
      throw new CallproofError(
        'ERR_INVALID_TOKEN',
        'the Authorization header must be exactly one "DPoP <token>"',
      )
    }
    const accessToken = credentials[1]!

    // 2. token
    const { verified, ath } = cachedToken(accessToken) ?? (await token(accessToken))

    // The binding of the body is computed while the proof's signature is checked (both wait on
    // Web Crypto), but only for a valid token, so an anonymous caller cannot make us hash large
    // bodies; its outcome is looked at only at step 10, so the order of refusals is unchanged.
    const pendingBinding = request.message === undefined ? undefined : bindingFor(request.message)
    pendingBinding?.catch(() => undefined)

    // 3–7. proof: exactly one header, then header/signature, htm/htu, iat window, ath
    const proofHeader = headers.get('dpop')
    if (proofHeader === null || proofHeader.trim() === '') {
      throw new CallproofError('ERR_INVALID_PROOF', 'the request carries no DPoP proof')
    }
    if (proofHeader.includes(',')) {
      // Headers joins repeated fields with ", ": a JWS never contains a comma.
      throw new CallproofError(
        'ERR_INVALID_PROOF',
        'the request must carry exactly one DPoP header',
      )
    }
    const proof = await verifyProofWith(
      proofHeader.trim(),
      {
        htm: request.method,
        htu,
        accessToken,
        algorithms,
        maxAgeSeconds: maxAge,
        futureSkewSeconds: skew,
        clock,
        keyCache,
        ...(o.verifySignature !== undefined && { verifySignature: o.verifySignature }),
      },
      { ath, htu },
    )

    // 8. the proof key is the key the token is bound to
    if (proof.jkt !== verified.claims.cnf.jkt) {
      throw new CallproofError(
        'ERR_INVALID_PROOF',
        'the proof key thumbprint does not match the access token cnf.jkt',
      )
    }

    // 9. nonce
    if (o.nonce) {
      if (!(await o.nonce.check(proof.nonce))) throw new UseNonceError(await o.nonce.current())
    }

    // 10. binding: the proof names the message this body actually is
    let binding: McpBinding | undefined
    let unbound = false
    if (request.message === undefined) {
      if (proof.mcp !== undefined) {
        throw new CallproofError(
          'ERR_BINDING_MISMATCH',
          `a ${request.method} request carries no message, but the proof binds ${describeBinding(proof.mcp)}`,
        )
      }
    } else {
      binding = await pendingBinding!
      request.onBinding?.(binding)
      if (proof.mcp === undefined && request.allowUnbound === true) {
        unbound = true
      } else if (!bindingsEqual(proof.mcp, binding)) {
        throw new CallproofError('ERR_BINDING_MISMATCH', bindingMismatch(proof.mcp, binding))
      }
    }

    // 11. replay, last: a refused request must not burn the proof's jti for nothing
    let first: boolean
    try {
      const owner = { sub: verified.claims.sub, clientId: verified.claims.client_id }
      first = await o.replay.consume(`dpop:${proof.jkt}:${proof.jti}`, replayExpiry(proof), owner)
    } catch (cause) {
      if (cause instanceof CallproofError) throw cause
      throw new CallproofError('ERR_STORE_UNAVAILABLE', 'the replay store is unavailable', {
        cause,
      })
    }
    if (!first) throw new CallproofError('ERR_REPLAY', 'this DPoP proof was already used')

    const claims = verified.claims
    const caller: Caller = {
      sub: claims.sub,
      clientId: claims.client_id,
      jkt: proof.jkt,
      tokenId: claims.jti,
      scopes: verified.scopes,
    }
    if (claims.acr !== undefined) caller.acr = claims.acr
    if (claims.auth_time !== undefined) caller.authTime = claims.auth_time
    const call: {
      caller: Caller
      token: VerifiedToken
      proof: VerifiedProof
      binding?: McpBinding
      unbound?: true
      message?: unknown
      acceptedUntil: number
    } = {
      caller: Object.freeze(caller),
      token: verified,
      proof,
      // The moment both token checks (jose's and the cached one above) refuse it.
      acceptedUntil: (claims.exp + skew) * 1000,
    }
    if (binding !== undefined) call.binding = binding
    if (unbound) call.unbound = true
    if (request.message !== undefined) call.message = request.message
    Object.freeze(call)
    verifiedCalls.add(call)
    return call as unknown as VerifiedCall
  }

  return { verify }
}
