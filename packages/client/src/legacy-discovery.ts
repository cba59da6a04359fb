/**
 * Discovery of the 2025-03-26 MCP revision, for servers that publish no protected resource
 * metadata (RFC 9728): an explicit opt-in (`legacyDiscovery: true`), because it is weaker.
 *
 * In that revision the authorization server is wherever the MCP server's origin says: its
 * metadata (RFC 8414) at `<origin>/.well-known/oauth-authorization-server`, else the fixed paths
 * `/authorize`, `/token` and `/register` of the origin. Nothing a resource publishes names the
 * authorization server, so nothing binds the choice to the resource: whoever answers on the
 * origin's well-known path (or its default paths) is trusted with the sign-in, no issuer is
 * checked against a resource's list, and the `resource` the token is asked for is only the server
 * URL the client was given. Current servers publish RFC 9728 metadata; a client that falls back
 * for them would let a server that merely stopped serving its metadata downgrade its clients.
 *
 * @module
 */

import * as oauth from 'oauth4webapi'
import {
  discoverProtectedResource,
  isResourceMetadataMissing,
  type DiscoveryOptions,
  type ProtectedResource,
} from './discovery.js'
import { CallproofClientError } from './errors.js'
import { guardedFetch, responseLimitErrorIn } from './guards.js'

/** The revision whose discovery this is; sent as `MCP-Protocol-Version` as it asks. */
export const LEGACY_PROTOCOL_VERSION = '2025-03-26'

/** What discovery found: the resource, and the authorization server when legacy discovery did. */
export interface ResourceDiscovery {
  /** The protected resource (synthesized from the server URL under legacy discovery). */
  resource: ProtectedResource
  /** Set only under legacy discovery: the authorization server found at the server's origin. */
  legacyAuthorizationServer?: oauth.AuthorizationServer
}

/**
 * The 2025-03-26 authorization server of `serverUrl`: the metadata at its origin when there is
 * one (its issuer must be the origin), else the default endpoints of the origin. Only a 404 means
 * "no metadata"; any other failure is an error, not a reason to guess endpoints.
 *
 * @throws {@link CallproofClientError} `ERR_INVALID_METADATA`, `ERR_ISSUER_MISMATCH`, `ERR_UNSAFE_URL`
 * @example
 * ```ts
 * const as = await discoverLegacyAuthorizationServer('http://127.0.0.1:3000/mcp', { urlPolicy })
 * ```
 * @see https://modelcontextprotocol.io/specification/2025-03-26/basic/authorization#2-3-server-metadata-discovery
 */
export async function discoverLegacyAuthorizationServer(
  serverUrl: string | URL,
  options: DiscoveryOptions = {},
): Promise<oauth.AuthorizationServer> {
  // The authorization base URL: the MCP server URL without its path.
  const base = new URL(new URL(serverUrl).origin)
  const url = `${base.origin}/.well-known/oauth-authorization-server`
  const safeFetch = guardedFetch(options.urlPolicy, options.fetch)
  const response = await safeFetch(url, {
    headers: { accept: 'application/json', 'mcp-protocol-version': LEGACY_PROTOCOL_VERSION },
  })
  if (response.status === 404) {
    await response.body?.cancel()
    return {
      issuer: base.href,
      authorization_endpoint: new URL('/authorize', base).href,
      token_endpoint: new URL('/token', base).href,
      registration_endpoint: new URL('/register', base).href,
      response_types_supported: ['code'],
      // The 2025-03-26 revision requires PKCE of every client and server; without metadata
      // there is nothing else to go by.
      code_challenge_methods_supported: ['S256'],
    }
  }
  try {
    return await oauth.processDiscoveryResponse(base, response)
  } catch (err) {
    if (
      err instanceof oauth.OperationProcessingError &&
      err.code === oauth.JSON_ATTRIBUTE_COMPARISON
    ) {
      throw new CallproofClientError(
        'ERR_ISSUER_MISMATCH',
        `authorization server metadata at ${url} does not name the issuer ${base.href}`,
        { cause: err },
      )
    }
    const limit = responseLimitErrorIn(err)
    if (limit !== undefined) throw limit
    throw new CallproofClientError(
      'ERR_INVALID_METADATA',
      `authorization server metadata at ${url}: ${(err as Error).message}`,
      { cause: err },
    )
  }
}

/**
 * The protected resource metadata of `serverUrl`, or, with `legacyDiscovery` and only when the
 * server publishes none (every well-known URL answered 404) and its challenge named none, the
 * 2025-03-26 discovery. Without the opt-in the error says how to opt in.
 *
 * @throws {@link CallproofClientError} what {@link discoverProtectedResource} and
 * {@link discoverLegacyAuthorizationServer} throw
 */
export async function discoverResource(
  serverUrl: URL,
  challengeUrl: string | undefined,
  options: DiscoveryOptions,
  legacyDiscovery: boolean,
): Promise<ResourceDiscovery> {
  try {
    return { resource: await discoverProtectedResource(serverUrl, challengeUrl, options) }
  } catch (err) {
    // A challenge that names a resource_metadata URL says the server speaks RFC 9728: its
    // document failing is an error, never a reason to downgrade.
    if (challengeUrl !== undefined || !isResourceMetadataMissing(err)) throw err
    if (!legacyDiscovery) {
      const error = err as CallproofClientError
      throw new CallproofClientError(
        error.code,
        `${error.message}. A server of the 2025-03-26 MCP revision publishes none; legacyDiscovery: true opts in to that revision's weaker discovery (see docs/guides/agents-without-a-user.md)`,
        { cause: err },
      )
    }
  }
  const as = await discoverLegacyAuthorizationServer(serverUrl, options)
  const resource = serverUrl.href
  return {
    resource: {
      metadata: { resource, authorization_servers: [as.issuer] },
      resource,
      url: serverUrl.href,
    },
    legacyAuthorizationServer: as,
  }
}
