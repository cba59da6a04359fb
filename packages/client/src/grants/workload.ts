/**
 * Workload identity federation (MCP SEP-1933): an agent running on a platform that issues it a
 * signed identity (a Kubernetes service account token, a CI job's OIDC token, a cloud instance
 * identity) presents that JWT with the JWT-bearer grant (RFC 7523) instead of holding a
 * long-lived client secret. The authorization server trusts the platform's issuer and maps the
 * token's `sub` to the agent.
 *
 * @module
 */

import { CallproofClientError } from '../errors.js'
import type { OAuthContext } from '../oauth.js'
import type { TokenSet } from '../stores.js'
import { jwtBearerGrant, type AgentClientOptions } from './jwt-bearer.js'
import { audienceIncludes, describeClaim, readAssertion, type AssertionSource } from './source.js'

/**
 * Options of workload identity federation.
 *
 * @example
 * ```ts
 * const workload: WorkloadIdentityOptions = {
 *   clientId: 'reporting-agent',
 *   assertion: { file: '/var/run/secrets/tokens/mcp-token' },
 * }
 * ```
 */
export interface WorkloadIdentityOptions extends AgentClientOptions {
  /** The platform's JWT for this workload, read anew for every grant. */
  assertion: AssertionSource
  /**
   * The audience the authorization server expects in the assertion, when it is neither its issuer
   * nor its token endpoint (RFC 7523 §3 allows both; some servers configure another value).
   */
  audience?: string
}

/**
 * Reads the workload assertion, checks that it is addressed to this authorization server, and
 * presents it with the JWT-bearer grant. An assertion for another server is never sent: that
 * server could replay it where it is valid.
 *
 * @throws {@link CallproofClientError} `ERR_ASSERTION_INVALID`, `ERR_TOKEN_REQUEST_FAILED`,
 * `ERR_TOKEN_NOT_BOUND`
 * @example
 * ```ts
 * const tokens = await workloadIdentityFlow(ctx, workload, { resource })
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc7523#section-3
 */
export async function workloadIdentityFlow(
  ctx: OAuthContext,
  options: WorkloadIdentityOptions,
  request: { resource: string; scopes?: readonly string[] },
): Promise<TokenSet> {
  const { jwt, claims } = await readAssertion(options.assertion, 'workload assertion')
  const accepted = [ctx.as.issuer]
  if (typeof ctx.as.token_endpoint === 'string') accepted.push(ctx.as.token_endpoint)
  if (options.audience !== undefined) accepted.push(options.audience)
  if (!audienceIncludes(claims, accepted)) {
    throw new CallproofClientError(
      'ERR_ASSERTION_INVALID',
      `workload assertion is for ${describeClaim(claims.aud)}, not for ${ctx.as.issuer}; not sent (set audience if the server expects another value)`,
    )
  }
  return jwtBearerGrant(ctx, jwt, request)
}
