/**
 * `@callproof/server`: a Hono middleware in front of the MCP SDK's Streamable HTTP transport that
 * verifies, on every request, the access token, the DPoP proof, the proof's binding to this
 * JSON-RPC message, replay and the policy of the tool, prompt or resource called, and hands the
 * verified caller to the handler.
 *
 * @example
 * ```ts
 * import { Hono } from 'hono'
 * import { z } from 'zod'
 * import { callerOf, createCallproof, createToolRegistry, jsonLinesSink } from '@callproof/server'
 *
 * const tools = createToolRegistry({ name: 'notes', version: '1.0.0' })
 * tools.register(
 *   'read_note',
 *   { inputSchema: { id: z.string() }, policy: { scopes: ['notes:read'] } },
 *   ({ id }, extra) => ({ content: [{ type: 'text', text: `${callerOf(extra).sub}: ${id}` }] }),
 * )
 * const callproof = createCallproof({
 *   resource: 'https://notes.example/mcp',
 *   issuers: 'https://as.example',
 *   tools,
 *   audit: jsonLinesSink(process.stdout),
 * })
 * const app = new Hono()
 * callproof.mount(app)
 * ```
 * @module
 */
export { createCallproof } from './middleware.js'
export type { Callproof, CallproofEnv } from './middleware.js'
export type { CallproofOptions, SessionOptions } from './options.js'
export { POLICY_META_KEY, ToolRegistry, callerOf, createToolRegistry } from './tools.js'
export type {
  CallerInfo,
  ListedPolicy,
  ListingContext,
  PromptConfig,
  ResourceConfig,
  ResourceTemplateConfig,
  ToolConfig,
  ToolRegistryOptions,
} from './tools.js'
export { MemorySessionStore } from './sessions.js'
export type { MemorySessionStoreOptions, SessionOwner, SessionStore } from './sessions.js'
export {
  metadataPathFor,
  metadataResponse,
  metadataUrlFor,
  protectedResourceMetadata,
} from './metadata.js'
export type { ProtectedResourceMetadata, ProtectedResourceMetadataInput } from './metadata.js'
export { checkOrigin, defaultOriginPolicy } from './origin.js'
export type { OriginPolicy } from './origin.js'
export { AUDIT_TEXT_MAX, jsonLinesSink, memorySink } from './audit.js'
export type { AuditEvent, AuditSink, TextWritable } from './audit.js'
export { assertSecureUrl, createIssuerKeys, discoverIssuer, discoveryUrls } from './issuer.js'
export type {
  AuthorizationServerMetadata,
  DiscoveryOptions,
  IssuerConfig,
  IssuerKeys,
  IssuerKeysOptions,
} from './issuer.js'
export { createIntrospector } from './introspection.js'
export type { IntrospectionOptions, Introspector } from './introspection.js'
export { DEFAULT_BODY_LIMIT } from './body.js'
export { adaptiveProofVerification, nodeProofVerification } from './signature.js'
export { DownstreamCredentialError, createDownstreamCredentials } from './downstream.js'
export type {
  CallerCredentials,
  DownstreamCredential,
  DownstreamCredentialErrorCode,
  DownstreamCredentials,
  DownstreamCredentialsOptions,
  DownstreamService,
} from './downstream.js'
export { MemoryGrantStore, createThirdPartyAuthorizations } from './grants.js'
export type {
  GrantStore,
  ThirdPartyAuthorizations,
  ThirdPartyAuthorizationsOptions,
  ThirdPartyCredential,
  ThirdPartyService,
} from './grants.js'
