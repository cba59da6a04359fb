/**
 * The JWT-bearer authorization grant (RFC 7523 §2.1) at the MCP server's authorization server:
 * the grant both agent flows end with (an ID-JAG for enterprise-managed authorization, a workload
 * token for workload identity federation). With a DPoP proof, like every token request of this
 * client, so the access token is bound to the client's key wherever the server supports it.
 *
 * @module
 */

import * as oauth from 'oauth4webapi'
import { CallproofClientError } from '../errors.js'
import { httpOptions, tokenError, toTokenSet, withNonceRetry, type OAuthContext } from '../oauth.js'
import { privateKeyJwtAuthentication } from '../oauth.js'
import { clientSecretBasic } from '../registration.js'
import type { TokenSet } from '../stores.js'

/** RFC 7523 §2.1. */
export const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer'

/**
 * The agent's client at the MCP authorization server, and how it authenticates there: a private
 * key (`private_key_jwt`), a secret (`client_secret_basic`), or neither (`none`: the assertion is
 * the only credential, as workload identity federation has it).
 *
 * @example
 * ```ts
 * const client: AgentClientOptions = { clientId: 'reporting-agent', clientSecret: 's3cret' }
 * ```
 */
export interface AgentClientOptions {
  /** The client id at the MCP authorization server. */
  clientId: string
  /** `client_secret_basic`. */
  clientSecret?: string
  /** `private_key_jwt`: a private `CryptoKey` or a PKCS #8 PEM. */
  privateKey?: CryptoKey | string
  /** The client assertion's algorithm (default ES256). */
  alg?: string
  /** The client assertion key's `kid`. */
  kid?: string
}

/**
 * The oauth4webapi client and its authentication for {@link AgentClientOptions}.
 *
 * @example
 * ```ts
 * const { client, clientAuth } = await agentClient({ clientId: 'agent' })
 * ```
 */
export async function agentClient(
  options: AgentClientOptions,
): Promise<{ client: oauth.Client; clientAuth: oauth.ClientAuth }> {
  const client = { client_id: options.clientId }
  if (options.privateKey !== undefined) {
    return {
      client,
      clientAuth: await privateKeyJwtAuthentication(options.privateKey, options.alg, options.kid),
    }
  }
  if (options.clientSecret !== undefined) {
    return { client, clientAuth: clientSecretBasic(options.clientSecret) }
  }
  return { client, clientAuth: oauth.None() }
}

/**
 * Refuses, before anything is sent, an authorization server whose metadata lists the grant types
 * it supports without `grantType`: the request could only fail, after the assertion left the
 * client. (Metadata without the list says nothing, and the request is tried.)
 *
 * @throws {@link CallproofClientError} `ERR_INVALID_METADATA`
 */
export function assertGrantSupported(as: oauth.AuthorizationServer, grantType: string): void {
  const supported = as.grant_types_supported
  if (Array.isArray(supported) && !supported.includes(grantType)) {
    throw new CallproofClientError(
      'ERR_INVALID_METADATA',
      `${as.issuer} does not support the ${grantType} grant (grant_types_supported: ${supported.join(', ')})`,
    )
  }
}

/**
 * Presents `assertion` with the JWT-bearer grant, `resource` (RFC 8707) and the scopes, with a
 * DPoP proof (one retry with the server's nonce). The token must be DPoP-bound unless the
 * context allows Bearer tokens.
 *
 * @throws {@link CallproofClientError} `ERR_TOKEN_REQUEST_FAILED`, `ERR_TOKEN_NOT_BOUND`,
 * `ERR_INVALID_METADATA`
 * @example
 * ```ts
 * const tokens = await jwtBearerGrant(ctx, idJag, { resource, scopes: ['drive:read'] })
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc7523#section-2.1
 */
export async function jwtBearerGrant(
  ctx: OAuthContext,
  assertion: string,
  request: { resource: string; scopes?: readonly string[] },
): Promise<TokenSet> {
  assertGrantSupported(ctx.as, JWT_BEARER_GRANT)
  const parameters: Record<string, string> = { assertion, resource: request.resource }
  if (request.scopes && request.scopes.length > 0) parameters.scope = request.scopes.join(' ')
  const http = httpOptions(ctx.urlPolicy, ctx.fetch)
  try {
    // No retry on a refusal (invalid_grant, invalid_scope, unauthorized_client): the same
    // assertion would be refused again, and a fallback to another grant would widen what the
    // agent can do behind its operator's back. Only the DPoP nonce retry, which changes the proof.
    const result = await withNonceRetry(
      () =>
        oauth.genericTokenEndpointRequest(
          ctx.as,
          ctx.client,
          ctx.clientAuth,
          JWT_BEARER_GRANT,
          parameters,
          {
            ...http,
            DPoP: ctx.dpop,
          },
        ),
      (response) => oauth.processGenericTokenEndpointResponse(ctx.as, ctx.client, response),
    )
    return toTokenSet(ctx, result, request.resource, request.scopes)
  } catch (err) {
    throw tokenError(err, `JWT-bearer grant at ${ctx.as.issuer}`)
  }
}
