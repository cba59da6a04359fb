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
  UseNonceError,
} from './errors.js'
export type { CallproofErrorCode } from './errors.js'
export { toHttpAnswer, toResponse, parseWwwAuthenticate } from './challenge.js'
export type { ChallengeContext, HttpAnswer } from './challenge.js'
export { jwkThumbprint } from './thumbprint.js'
export { argsDigest, bindingFor, bindingShape, bindingsEqual } from './binding.js'
export type { McpBinding } from './binding.js'
export {
  createProof,
  verifyProof,
  normalizeHtu,
  KeyCache,
  PROOF_ALGORITHMS,
  accessTokenHash,
  webCryptoProofSigning,
  webCryptoProofVerification,
} from './proof.js'
export type {
  Clock,
  ProofAlgorithm,
  CreateProofInput,
  CreateProofOptions,
  ProofSigningFunction,
  ProofSignatureCheck,
  VerifyProofOptions,
  VerifiedProof,
} from './proof.js'
export { verifyAccessToken, TOKEN_ALGORITHMS } from './token.js'
export type {
  AccessTokenClaims,
  AuthorizationDetail,
  KeyResolver,
  VerifyAccessTokenOptions,
  VerifiedToken,
} from './token.js'
export { evaluatePolicy, isAllowedNow, canEverBeGranted, assertValidPolicy } from './policy.js'
export type {
  ToolPolicy,
  Caller,
  McpToolCallAuthorizationDetail,
  DecisionReason,
  Decision,
  PolicyInput,
} from './policy.js'
export { MemoryReplayStore } from './replay.js'
export type { ReplayStore, MemoryReplayStoreOptions } from './replay.js'
export { createVerifier, isVerifiedCall, DEFAULT_CLOCK_SKEW_SECONDS } from './verifier.js'
export type {
  NonceSource,
  VerifierOptions,
  VerifiedCall,
  Verifier,
  VerifyRequest,
} from './verifier.js'
export * from './nonce.js'
