/**
 * Enterprise-managed authorization (the MCP extension `io.modelcontextprotocol/enterprise-managed-
 * authorization`, on draft-ietf-oauth-identity-assertion-authz-grant): the user signed in once at
 * the enterprise identity provider; the client trades that ID token at the IdP for an Identity
 * Assertion JWT Authorization Grant (ID-JAG, RFC 8693 token exchange) naming the MCP server's
 * authorization server and the MCP server, then presents the ID-JAG there with the JWT-bearer
 * grant (RFC 7523). The IdP decides who may use which MCP server; no consent page per server.
 *
 * @module
 */

import * as oauth from 'oauth4webapi'
import { discoverAuthorizationServer } from '../discovery.js'
import { CallproofClientError } from '../errors.js'
import { httpOptions, tokenError, type OAuthContext } from '../oauth.js'
import type { TokenSet } from '../stores.js'
import { agentClient, jwtBearerGrant, type AgentClientOptions } from './jwt-bearer.js'
import {
  audienceIncludes,
  describeClaim,
  readAssertion,
  type Assertion,
  type AssertionSource,
} from './source.js'

/** RFC 8693 §2.1. */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange'
/** RFC 8693 §3: an OpenID Connect ID token. */
export const ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token'
/** draft-ietf-oauth-identity-assertion-authz-grant: the ID-JAG token type. */
export const ID_JAG_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id-jag'
/** The ID-JAG's JOSE `typ`. */
export const ID_JAG_TYP = 'oauth-id-jag+jwt'

/**
 * Options of enterprise-managed authorization: the client at the MCP authorization server
 * (`clientId` and its authentication), the enterprise IdP, and the user's ID token from it.
 *
 * @example
 * ```ts
 * const enterprise: EnterpriseAuthorizationOptions = {
 *   clientId: 'mcp-client-at-drive', clientSecret: process.env.DRIVE_CLIENT_SECRET,
 *   idp: { issuer: 'https://login.example.com', clientId: 'mcp-client-at-idp' },
 *   idToken: () => sso.currentIdToken(),
 * }
 * ```
 */
export interface EnterpriseAuthorizationOptions extends AgentClientOptions {
  /** The enterprise IdP: its issuer (metadata discovered and checked) and this client there. */
  idp: AgentClientOptions & { issuer: string }
  /** The user's ID token from the IdP (the token exchange's subject), read for every grant. */
  idToken: AssertionSource
}

/**
 * Checks that what the IdP issued is an ID-JAG for exactly this grant: type `oauth-id-jag+jwt`,
 * audience the MCP authorization server, `resource` the MCP server, `client_id` this client. The
 * client cannot verify the IdP's signature (the authorization server does); these checks stop it
 * from forwarding a grant meant for another server, which that server could redeem elsewhere.
 */
function assertIdJagFor(
  idJag: Assertion,
  expected: { issuer: string; resource: string; clientId: string },
): void {
  const refuse = (why: string): never => {
    throw new CallproofClientError('ERR_ASSERTION_INVALID', `ID-JAG from the IdP ${why}; not sent`)
  }
  if (idJag.header.typ !== ID_JAG_TYP) {
    refuse(`has typ ${describeClaim(idJag.header.typ)}, not ${ID_JAG_TYP}`)
  }
  if (!audienceIncludes(idJag.claims, [expected.issuer])) {
    refuse(`is for ${describeClaim(idJag.claims.aud)}, not for ${expected.issuer}`)
  }
  const resource = idJag.claims['resource']
  if (resource !== undefined && resource !== expected.resource) {
    refuse(`names the resource ${describeClaim(resource)}, not ${expected.resource}`)
  }
  const clientId = idJag.claims['client_id']
  if (clientId !== undefined && clientId !== expected.clientId) {
    refuse(`was issued to client ${describeClaim(clientId)}, not ${expected.clientId}`)
  }
}

/**
 * The token exchange at the IdP: the user's ID token for an ID-JAG addressed to `audience` (the
 * MCP authorization server's issuer) and `resource` (the MCP server).
 *
 * @throws {@link CallproofClientError} `ERR_ASSERTION_INVALID`, `ERR_TOKEN_REQUEST_FAILED`,
 * `ERR_INVALID_METADATA`, `ERR_ISSUER_MISMATCH`
 * @example
 * ```ts
 * const idJag = await requestIdJag(options, { audience: as.issuer, resource }, ctx)
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc8693#section-2.1
 */
export async function requestIdJag(
  options: EnterpriseAuthorizationOptions,
  target: { audience: string; resource: string; scopes?: readonly string[] },
  ctx: Pick<OAuthContext, 'urlPolicy' | 'fetch'>,
): Promise<Assertion> {
  const discovery = { urlPolicy: ctx.urlPolicy, ...(ctx.fetch && { fetch: ctx.fetch }) }
  const idp = await discoverAuthorizationServer(options.idp.issuer, discovery)
  const subject = await readAssertion(options.idToken, 'ID token')
  const { client, clientAuth } = await agentClient(options.idp)
  const parameters: Record<string, string> = {
    requested_token_type: ID_JAG_TOKEN_TYPE,
    subject_token: subject.jwt,
    subject_token_type: ID_TOKEN_TYPE,
    audience: target.audience,
    resource: target.resource,
  }
  if (target.scopes && target.scopes.length > 0) parameters.scope = target.scopes.join(' ')
  let result: oauth.TokenEndpointResponse
  try {
    const response = await oauth.genericTokenEndpointRequest(
      idp,
      client,
      clientAuth,
      TOKEN_EXCHANGE_GRANT,
      parameters,
      httpOptions(ctx.urlPolicy, ctx.fetch),
    )
    // RFC 8693 §2.2.1: a token that is not an access token has token_type "N_A".
    result = await oauth.processGenericTokenEndpointResponse(idp, client, response, {
      recognizedTokenTypes: { n_a: () => undefined },
    })
  } catch (err) {
    throw tokenError(err, `token exchange at ${idp.issuer}`)
  }
  if (result['issued_token_type'] !== ID_JAG_TOKEN_TYPE) {
    throw new CallproofClientError(
      'ERR_ASSERTION_INVALID',
      `token exchange at ${idp.issuer} issued ${describeClaim(result['issued_token_type'])}, not an ID-JAG; not sent`,
    )
  }
  return readAssertion(result.access_token, 'ID-JAG')
}

/**
 * Enterprise-managed authorization: the ID-JAG from the IdP, checked, then the JWT-bearer grant at
 * the MCP authorization server with a DPoP proof.
 *
 * @throws {@link CallproofClientError} `ERR_ASSERTION_INVALID`, `ERR_TOKEN_REQUEST_FAILED`,
 * `ERR_TOKEN_NOT_BOUND`
 * @example
 * ```ts
 * const tokens = await enterpriseAuthorizationFlow(ctx, enterprise, { resource })
 * ```
 */
export async function enterpriseAuthorizationFlow(
  ctx: OAuthContext,
  options: EnterpriseAuthorizationOptions,
  request: { resource: string; scopes?: readonly string[] },
): Promise<TokenSet> {
  const idJag = await requestIdJag(
    options,
    {
      audience: ctx.as.issuer,
      resource: request.resource,
      ...(request.scopes && { scopes: request.scopes }),
    },
    ctx,
  )
  assertIdJagFor(idJag, {
    issuer: ctx.as.issuer,
    resource: request.resource,
    clientId: ctx.client.client_id,
  })
  return jwtBearerGrant(ctx, idJag.jwt, request)
}
