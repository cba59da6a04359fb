/**
 * The RFC 9728 protected resource metadata document, served at the path-inserted well-known URI
 * of the resource (`https://host/mcp` → `https://host/.well-known/oauth-protected-resource/mcp`).
 *
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-3
 * @module
 */

const WELL_KNOWN = '/.well-known/oauth-protected-resource'

/** The fields callproof publishes (RFC 9728 §2 and RFC 9449 §5.1). */
export interface ProtectedResourceMetadata {
  readonly resource: string
  readonly authorization_servers: readonly string[]
  readonly scopes_supported: readonly string[]
  readonly bearer_methods_supported: readonly ['header']
  readonly dpop_signing_alg_values_supported: readonly string[]
  readonly dpop_bound_access_tokens_required: true
  readonly resource_name?: string
}

/**
 * The path at which the metadata of `resource` is served: the well-known prefix inserted before
 * the resource's path (RFC 9728 §3.1), so several resources on one host each get their own.
 *
 * @example
 * ```ts
 * metadataPathFor('http://127.0.0.1:3000/mcp') // '/.well-known/oauth-protected-resource/mcp'
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-3.1
 */
export function metadataPathFor(resource: string | URL): string {
  const url = new URL(resource)
  const path = url.pathname === '/' ? '' : url.pathname.replace(/\/+$/, '')
  return `${WELL_KNOWN}${path}`
}

/**
 * The absolute URL of the metadata document of `resource`: what every challenge names in
 * `resource_metadata`.
 *
 * @example
 * ```ts
 * metadataUrlFor('https://drive.example/mcp')
 * // 'https://drive.example/.well-known/oauth-protected-resource/mcp'
 * ```
 */
export function metadataUrlFor(resource: string | URL): string {
  return new URL(metadataPathFor(resource), resource).href
}

/** Input of {@link protectedResourceMetadata}. */
export interface ProtectedResourceMetadataInput {
  resource: string
  authorizationServers: readonly string[]
  scopesSupported: readonly string[]
  algorithms: readonly string[]
  resourceName?: string
}

/**
 * Builds the metadata document. `dpop_bound_access_tokens_required` is always true: callproof
 * refuses bearer tokens, and saying so up front lets clients obtain a bound token the first time.
 *
 * @example
 * ```ts
 * protectedResourceMetadata({
 *   resource: 'https://drive.example/mcp',
 *   authorizationServers: ['https://as.example'],
 *   scopesSupported: ['drive:read'],
 *   algorithms: ['ES256', 'EdDSA'],
 * })
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-2
 */
export function protectedResourceMetadata(
  input: ProtectedResourceMetadataInput,
): ProtectedResourceMetadata {
  return {
    resource: input.resource,
    authorization_servers: [...input.authorizationServers],
    scopes_supported: [...new Set(input.scopesSupported)].sort(),
    bearer_methods_supported: ['header'],
    dpop_signing_alg_values_supported: [...input.algorithms],
    dpop_bound_access_tokens_required: true,
    ...(input.resourceName === undefined ? {} : { resource_name: input.resourceName }),
  }
}

/**
 * A `Response` carrying the document. Public and cacheable for a short while; CORS is open
 * because the document holds nothing secret and browser-based clients must read it.
 *
 * @example
 * ```ts
 * app.get(metadataPathFor(resource), () => metadataResponse(document))
 * ```
 */
export function metadataResponse(metadata: ProtectedResourceMetadata): Response {
  return new Response(JSON.stringify(metadata), {
    status: 200,
    headers: {
      'content-type': 'application/json',
      'cache-control': 'public, max-age=300',
      'access-control-allow-origin': '*',
    },
  })
}
