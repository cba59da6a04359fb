/**
 * `@callproof/core`: the callproof protocol. Every MCP call carries a DPoP proof bound to that
 * very JSON-RPC message; the server verifies token, proof, binding and replay, then the tool's
 * policy decides. Web platform APIs only: runs on Node, Deno, Bun and Workers.
 *
 * @packageDocumentation
 */

/**
 * The version of `@callproof/core`.
 *
 * @example
 * ```ts
 * console.log(`callproof core ${version}`)
 * ```
 * @see docs/protocol.md (the normative protocol this package implements)
 */
export const version = '0.1.0'

export {
  CallproofError,
  InsufficientScopeError,
  InsufficientUserAuthenticationError,
  ApprovalRequiredError,
  QuotaExceededError,
  UseNonceError,
} from './errors.js'
export type { CallproofErrorCode } from './errors.js'
export { toHttpAnswer, toResponse, parseWwwAuthenticate } from './challenge.js'
export type { ChallengeContext, HttpAnswer } from './challenge.js'
export type { Clock } from './clock.js'
export { jwkThumbprint } from './thumbprint.js'
export { argsDigest, bindingFor, bindingShape, bindingsEqual } from './binding.js'
export type { McpBinding } from './binding.js'
export { PROOF_ALGORITHMS, accessTokenHash } from './proof-jws.js'
export type { ProofAlgorithm } from './proof-jws.js'
export { normalizeHtu } from './htu.js'
export { createProof, webCryptoProofSigning } from './proof-create.js'
export type { CreateProofInput, CreateProofOptions, ProofSigningFunction } from './proof-create.js'
export { verifyProof, KeyCache, webCryptoProofVerification } from './proof-verify.js'
export type { ProofSignatureCheck, VerifyProofOptions, VerifiedProof } from './proof-verify.js'
export { verifyAccessToken, TOKEN_ALGORITHMS } from './token.js'
export type {
  AccessTokenClaims,
  AuthorizationDetail,
  KeyResolver,
  VerifyAccessTokenOptions,
  VerifiedToken,
} from './token.js'
export type { Caller, McpToolCallAuthorizationDetail } from './caller.js'
export { evaluatePolicy, isAllowedNow, canEverBeGranted, assertValidPolicy } from './policy.js'
export type { ToolPolicy, DecisionReason, Decision, PolicyInput, PrimitiveKind } from './policy.js'
export { MemoryReplayStore } from './replay.js'
export type { ReplayStore, ReplayOwner, MemoryReplayStoreOptions } from './replay.js'
export { createVerifier, isVerifiedCall, DEFAULT_CLOCK_SKEW_SECONDS } from './verifier.js'
export type {
  NonceSource,
  VerifierOptions,
  VerifiedCall,
  Verifier,
  VerifyRequest,
} from './verifier.js'
export { createNonceSource } from './nonce.js'
export type { NonceSourceOptions, WindowedNonceSource } from './nonce.js'
export { isLoopbackHost } from './loopback.js'
