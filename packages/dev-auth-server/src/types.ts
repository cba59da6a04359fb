// Public types, kept apart from the modules that import oidc-provider (which ships no types),
// so that the published declarations never refer to it.

/** An MCP server (a protected resource, RFC 8707 / RFC 9728) this server issues tokens for. */
export interface DevResource {
  /** The resource URI exactly as clients send it in `resource` and servers expect it in `aud`. */
  readonly uri: string
  /** The scopes this resource understands, e.g. `['drive:read', 'drive:write']`. */
  readonly scopes: readonly string[]
}

/**
 * OAuth 2.0 client metadata (RFC 7591 §2) of a pre-registered client, as oidc-provider takes it.
 * Every client is forced to `dpop_bound_access_tokens: true`.
 */
export interface ClientMetadata {
  client_id: string
  client_secret?: string
  redirect_uris: string[]
  token_endpoint_auth_method?: string
  application_type?: 'web' | 'native'
  grant_types?: string[]
  response_types?: string[]
  client_name?: string
  [key: string]: unknown
}

/** A logger; only `warn` and `error` are required to be loud. */
export interface DevLogger {
  info(message: string): void
  warn(message: string): void
  error(message: string, error?: unknown): void
}
