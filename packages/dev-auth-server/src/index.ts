/**
 * `@callproof/dev-auth-server`: a development authorization server for callproof, built on
 * panva's oidc-provider. Development and teaching only: its users, passwords and one-time code
 * are published.
 *
 * @packageDocumentation
 */
export {
  startDevAuthServer,
  createDevAuthServer,
  DEV_CLIENT_ID,
  DEV_REDIRECT_URI,
} from './server.js'
export type {
  DevAuthServer,
  DevAuthServerApp,
  DevAuthServerOptions,
  StartDevAuthServerOptions,
  ClientMetadata,
  DevResource,
  DevLogger,
  TokenExchangeRule,
  JwtBearerTrust,
} from './server.js'
export { ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT } from './token-exchange.js'
export { JWT_BEARER_GRANT } from './jwt-bearer.js'
export { devInteraction, DevInteractionError } from './headless.js'
export type { Interaction, DevInteraction, DevInteractionOptions, SeenPage } from './headless.js'
export { ACR_PASSWORD, ACR_MFA, ACR_VALUES, DEV_MFA_CODE, DEV_USERS } from './users.js'
export type { AcrValue, DevUser } from './users.js'
export { MCP_TOOL_CALL, argumentsDigest } from './authorization-details.js'
export type { McpToolCallDetail } from './authorization-details.js'
