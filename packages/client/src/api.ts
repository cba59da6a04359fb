/**
 * The SDK-neutral public surface of `@callproof/client`, shared by both entry points: `.` (on
 * `@modelcontextprotocol/sdk` 1.x) and `./v2` (on `@modelcontextprotocol/client` 2.x), which add
 * their own `connect()`. Nothing here imports an MCP SDK.
 *
 * @module
 */

export { createCallproofFetch } from './wiring.js'
export type { ConnectOptions, ConnectSettings } from './wiring.js'
export { CallproofSession } from './session.js'
export type {
  SessionOptions,
  SessionSettings,
  SessionGrant,
  AgentGrants,
  ClientCredentialsOptions,
  ToolCall,
} from './session.js'
export { jwtBearerGrant } from './grants/jwt-bearer.js'
export type { AgentClientOptions } from './grants/jwt-bearer.js'
export { workloadIdentityFlow } from './grants/workload.js'
export type { WorkloadIdentityOptions } from './grants/workload.js'
export { enterpriseAuthorizationFlow } from './grants/enterprise.js'
export type { EnterpriseAuthorizationOptions } from './grants/enterprise.js'
export type { AssertionSource } from './grants/source.js'
export { discoverLegacyAuthorizationServer } from './legacy-discovery.js'
export { createChallengeFetch, readChallenge } from './challenges.js'
export type { Challenge, ChallengeFetchOptions } from './challenges.js'
export { sendWithProof, createProofFetch, bindingOfBody } from './fetch.js'
export type { ProofSigner } from './fetch.js'
export { nodeProofSigning } from './signing.js'
export {
  discoverProtectedResource,
  discoverAuthorizationServer,
  authorizationServerMetadataUrls,
  assertAlgorithmSupported,
  resourceCovers,
} from './discovery.js'
export type { ProtectedResource, DiscoveryOptions } from './discovery.js'
export {
  authorizationCodeFlow,
  refreshTokens,
  clientCredentialsFlow,
  privateKeyJwtAuthentication,
} from './oauth.js'
export type { OAuthContext, AuthorizationRequest } from './oauth.js'
export { resolveClient, clientAuthentication, clientSecretBasic } from './registration.js'
export type { RegistrationOptions } from './registration.js'
export {
  assertSafeUrl,
  guardedFetch,
  DEFAULT_MAX_RESPONSE_BYTES,
  DEFAULT_RESPONSE_TIMEOUT_MS,
} from './guards.js'
export type { UrlPolicy } from './guards.js'
export { systemBrowserInteraction, assertOpenableUrl } from './interaction.js'
export type { Interaction, InteractionContext, SystemBrowserOptions } from './interaction.js'
export {
  generateProofKeyPair,
  proofAlgorithms,
  loadOrCreateKeyPair,
  MemoryKeyStore,
  FileKeyStore,
} from './keys.js'
export type { KeyAlgorithm, KeyStore } from './keys.js'
export { MemoryTokenStore, FileTokenStore } from './stores.js'
export type { TokenSet, TokenStore, StoredClient } from './stores.js'
export { CallproofClientError, ChallengeError } from './errors.js'
export type { CallproofClientErrorCode } from './errors.js'
