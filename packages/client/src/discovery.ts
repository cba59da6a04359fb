/**
 * Discovery: which authorization server protects an MCP server (RFC 9728 protected resource
 * metadata) and what that authorization server's endpoints are (RFC 8414 / OpenID Connect
 * Discovery), in the order the MCP authorization specification gives, parsed and checked by
 * oauth4webapi.
 *
 * @module
 */

import * as oauth from 'oauth4webapi'
import { CallproofClientError } from './errors.js'
import { guardedFetch, responseLimitErrorIn, type UrlPolicy } from './guards.js'

/**
 * The protected resource metadata of an MCP server, checked.
 *
 * @example
 * ```ts
 * const { metadata } = await discoverProtectedResource('https://drive.example.com/mcp')
 * metadata.authorization_servers // ['https://auth.example.com']
 * ```
 */
export interface ProtectedResource {
  /** The document (oauth4webapi's `ResourceServer`). */
  metadata: oauth.ResourceServer
  /** The resource identifier tokens are requested for (`metadata.resource`). */
  resource: string
  /** Where the document was found. */
  url: string
}

/** Options for discovery requests. */
export interface DiscoveryOptions {
  /** What server-supplied URLs may point at. */
  urlPolicy?: UrlPolicy
  /** The underlying fetch (the guard wraps it; pass `init.dispatcher` on, see `guardedFetch`). */
  fetch?: typeof fetch
}

/**
 * Whether `resource` (from metadata) identifies the server at `serverUrl`: the same origin, and
 * the server's path equal to or under the resource's path. Anything else means the metadata speaks
 * for another server, and a token requested for it would be usable there.
 *
 * @example
 * ```ts
 * resourceCovers('https://a.example/mcp', 'https://a.example/mcp') // true
 * resourceCovers('https://b.example/mcp', 'https://a.example/mcp') // false
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-3.3
 */
export function resourceCovers(resource: string, serverUrl: string | URL): boolean {
  let r: URL
  let s: URL
  try {
    r = new URL(resource)
    s = new URL(serverUrl)
  } catch {
    return false
  }
  if (r.origin !== s.origin || r.search !== '' || r.hash !== '') return false
  const rp = r.pathname.endsWith('/') ? r.pathname : `${r.pathname}/`
  const sp = s.pathname.endsWith('/') ? s.pathname : `${s.pathname}/`
  return sp.startsWith(rp)
}

function wellKnownResourceUrls(serverUrl: URL): string[] {
  const path = serverUrl.pathname === '/' ? '' : serverUrl.pathname.replace(/\/$/, '')
  const urls = []
  if (path !== '') urls.push(`${serverUrl.origin}/.well-known/oauth-protected-resource${path}`)
  urls.push(`${serverUrl.origin}/.well-known/oauth-protected-resource`)
  return urls
}

/** The errors that say a server publishes no protected resource metadata at all. */
const missing = new WeakSet<Error>()

/**
 * Whether `err` is {@link discoverProtectedResource} finding no document: every well-known URL
 * answered 404 (the 2025-03-26 revision's servers publish none).
 *
 * @example
 * ```ts
 * if (isResourceMetadataMissing(err)) console.log('no RFC 9728 metadata')
 * ```
 */
export function isResourceMetadataMissing(err: unknown): boolean {
  return err instanceof Error && missing.has(err)
}

function toMetadataError(err: unknown, what: string): CallproofClientError {
  if (err instanceof CallproofClientError) return err
  // A body cut off by the size or time limit is that, not "not JSON".
  const limit = responseLimitErrorIn(err)
  if (limit !== undefined) return limit
  return new CallproofClientError('ERR_INVALID_METADATA', `${what}: ${(err as Error).message}`, {
    cause: err,
  })
}

/**
 * Finds and checks the protected resource metadata of `serverUrl`: first the `resource_metadata`
 * URL of the server's 401 challenge, else the path-inserted well-known URL, else the root one.
 * Refuses a document whose `resource` does not identify `serverUrl`.
 *
 * @param serverUrl - the MCP endpoint
 * @param challengeUrl - `resource_metadata` from the `WWW-Authenticate` challenge, if any
 * @param options - URL policy and fetch
 * @throws {@link CallproofClientError} `ERR_RESOURCE_MISMATCH`, `ERR_INVALID_METADATA`, `ERR_UNSAFE_URL`
 * @example
 * ```ts
 * const prm = await discoverProtectedResource(url, challenge.params.resource_metadata)
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-3
 */
export async function discoverProtectedResource(
  serverUrl: string | URL,
  challengeUrl: string | undefined,
  options: DiscoveryOptions = {},
): Promise<ProtectedResource> {
  const server = new URL(serverUrl)
  const safeFetch = guardedFetch(options.urlPolicy, options.fetch)
  const candidates = challengeUrl ? [challengeUrl] : wellKnownResourceUrls(server)
  let lastStatus = 0
  let allNotFound = true
  for (const url of candidates) {
    const response = await safeFetch(url, { headers: { accept: 'application/json' } })
    if (!response.ok) {
      lastStatus = response.status
      if (lastStatus !== 404) allNotFound = false
      await response.body?.cancel()
      continue
    }
    let peeked: unknown
    try {
      peeked = await response.clone().json()
    } catch (err) {
      throw toMetadataError(err, `protected resource metadata at ${url} is not JSON`)
    }
    const claimed = (peeked as { resource?: unknown } | null)?.resource
    if (typeof claimed !== 'string') {
      throw new CallproofClientError(
        'ERR_INVALID_METADATA',
        `protected resource metadata at ${url} has no "resource" string`,
      )
    }
    if (!resourceCovers(claimed, server)) {
      throw new CallproofClientError(
        'ERR_RESOURCE_MISMATCH',
        `protected resource metadata at ${url} is for ${claimed}, not for ${server.href}`,
      )
    }
    let metadata: oauth.ResourceServer
    try {
      metadata = await oauth.processResourceDiscoveryResponse(new URL(claimed), response)
    } catch (err) {
      throw toMetadataError(err, `protected resource metadata at ${url}`)
    }
    const servers = metadata.authorization_servers
    if (
      !Array.isArray(servers) ||
      servers.length === 0 ||
      !servers.every((s) => typeof s === 'string')
    ) {
      throw new CallproofClientError(
        'ERR_INVALID_METADATA',
        `protected resource metadata at ${url} names no authorization_servers`,
      )
    }
    return { metadata, resource: claimed, url }
  }
  const error = new CallproofClientError(
    'ERR_INVALID_METADATA',
    `no protected resource metadata for ${server.href} (last status ${lastStatus})`,
  )
  if (allNotFound) missing.add(error)
  throw error
}

/**
 * The authorization server metadata URLs for `issuer`, in the MCP specification's order: for an
 * issuer with a path, OAuth path-inserted, OpenID path-inserted, OpenID path-appended; without a
 * path, OAuth then OpenID.
 *
 * @example
 * ```ts
 * authorizationServerMetadataUrls('https://a.example/tenant')
 * // ['https://a.example/.well-known/oauth-authorization-server/tenant', …]
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc8414#section-3.1
 */
export function authorizationServerMetadataUrls(issuer: string | URL): string[] {
  const url = new URL(issuer)
  const path = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '')
  if (path === '') {
    return [
      `${url.origin}/.well-known/oauth-authorization-server`,
      `${url.origin}/.well-known/openid-configuration`,
    ]
  }
  return [
    `${url.origin}/.well-known/oauth-authorization-server${path}`,
    `${url.origin}/.well-known/openid-configuration${path}`,
    `${url.origin}${path}/.well-known/openid-configuration`,
  ]
}

/**
 * Fetches and checks an authorization server's metadata. The first document found must name
 * exactly `issuer` (oauth4webapi's `processDiscoveryResponse`): a mismatch is an error, never a
 * reason to try the next URL, because a mix-up attack serves another server's metadata.
 *
 * @param issuer - the issuer identifier from the protected resource metadata
 * @param options - URL policy and fetch
 * @throws {@link CallproofClientError} `ERR_ISSUER_MISMATCH`, `ERR_INVALID_METADATA`, `ERR_UNSAFE_URL`
 * @example
 * ```ts
 * const as = await discoverAuthorizationServer('https://auth.example.com')
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc8414#section-3.3
 */
export async function discoverAuthorizationServer(
  issuer: string,
  options: DiscoveryOptions = {},
): Promise<oauth.AuthorizationServer> {
  let expected: URL
  try {
    expected = new URL(issuer)
  } catch (err) {
    throw new CallproofClientError('ERR_INVALID_METADATA', `issuer ${issuer} is not a URL`, {
      cause: err,
    })
  }
  const safeFetch = guardedFetch(options.urlPolicy, options.fetch)
  let lastStatus = 0
  for (const url of authorizationServerMetadataUrls(expected)) {
    const response = await safeFetch(url, { headers: { accept: 'application/json' } })
    if (!response.ok) {
      lastStatus = response.status
      await response.body?.cancel()
      continue
    }
    try {
      const as = await oauth.processDiscoveryResponse(expected, response)
      for (const endpoint of ['authorization_endpoint', 'token_endpoint'] as const) {
        const value = as[endpoint]
        if (value !== undefined && typeof value !== 'string') {
          throw new CallproofClientError(
            'ERR_INVALID_METADATA',
            `authorization server metadata at ${url}: ${endpoint} is not a string`,
          )
        }
      }
      return as
    } catch (err) {
      if (
        err instanceof oauth.OperationProcessingError &&
        err.code === oauth.JSON_ATTRIBUTE_COMPARISON
      ) {
        throw new CallproofClientError(
          'ERR_ISSUER_MISMATCH',
          `authorization server metadata at ${url} does not name the issuer ${expected.href}`,
          { cause: err },
        )
      }
      throw toMetadataError(err, `authorization server metadata at ${url}`)
    }
  }
  throw new CallproofClientError(
    'ERR_INVALID_METADATA',
    `no authorization server metadata for ${issuer} (last status ${lastStatus})`,
  )
}

/**
 * Refuses to go on when a server advertises proof algorithms and none of ours is among them:
 * the server would reject every proof, and a silent downgrade to Bearer would lose the binding.
 *
 * @param advertised - `dpop_signing_alg_values_supported` or a challenge's `algs` (undefined: no constraint)
 * @param ours - the algorithms our key signs with
 * @param who - for the message
 * @throws {@link CallproofClientError} `ERR_UNSUPPORTED_ALGORITHM`
 * @example
 * ```ts
 * assertAlgorithmSupported(as.dpop_signing_alg_values_supported, ['ES256'], as.issuer)
 * ```
 */
export function assertAlgorithmSupported(
  advertised: unknown,
  ours: readonly string[],
  who: string,
): void {
  if (advertised === undefined) return
  const list = typeof advertised === 'string' ? advertised.split(/\s+/) : advertised
  if (!Array.isArray(list)) {
    throw new CallproofClientError(
      'ERR_INVALID_METADATA',
      `${who}: proof algorithms advertised are not a list`,
    )
  }
  if (!ours.some((alg) => list.includes(alg))) {
    throw new CallproofClientError(
      'ERR_UNSUPPORTED_ALGORITHM',
      `${who} accepts proofs signed with ${list.join(', ') || 'nothing'}; this client signs with ${ours.join(' / ')}`,
    )
  }
}
