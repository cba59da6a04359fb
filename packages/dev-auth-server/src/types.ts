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

/**
 * One permission of the token exchange policy (RFC 8693): the MCP server authenticating as
 * `client` may exchange an access token issued *to* `subject` (its own resource URI) for a token
 * for `resource`, with at most `scopes`. Anything not listed is refused.
 *
 * @example
 * ```ts
 * { client: 'drive-mcp', subject: 'http://127.0.0.1:3000/mcp', resource: 'http://127.0.0.1:3100/', scopes: ['mail:send'] }
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc8693
 */
export interface TokenExchangeRule {
  /** The client id the MCP server authenticates as (private_key_jwt). */
  readonly client: string
  /** The MCP server's resource URI: the subject token's `aud` must contain it. */
  readonly subject: string
  /** The downstream API (`resource` / `audience` of the request; `aud` of the issued token). */
  readonly resource: string
  /** The scopes that may be requested for `resource`. */
  readonly scopes: readonly string[]
}

/**
 * An issuer whose JWTs this server accepts with the JWT-bearer grant (RFC 7523), with its public
 * keys. `kind: 'id-jag'`: an enterprise identity provider issuing Identity Assertion JWT
 * Authorization Grants (enterprise-managed authorization) for the test users, to the `clients`
 * listed. `kind: 'workload'`: a workload platform whose token with `sub` equal to `subject`
 * authenticates the agent `client` (workload identity federation). At most `scopes` (default: the
 * resource's) are granted. Every issued token is DPoP-bound.
 *
 * @example
 * ```ts
 * { kind: 'workload', issuer: 'https://k8s.example', keys: [jwk], client: 'agent', subject: 'system:serviceaccount:ci:agent' }
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc7523
 */
export type JwtBearerTrust =
  | {
      readonly kind: 'id-jag'
      /** The IdP's issuer identifier (the ID-JAG's `iss`). */
      readonly issuer: string
      /** Its public signing keys (JWK, ES256 / EdDSA / RS256). */
      readonly keys: readonly Record<string, unknown>[]
      /** The client ids that may present its ID-JAGs (each must also be the ID-JAG's `client_id`). */
      readonly clients: readonly string[]
      /** The most that may be granted (default: the resource's scopes). */
      readonly scopes?: readonly string[]
    }
  | {
      readonly kind: 'workload'
      /** The platform's issuer identifier (the token's `iss`). */
      readonly issuer: string
      /** Its public signing keys. */
      readonly keys: readonly Record<string, unknown>[]
      /** The agent's client id. */
      readonly client: string
      /** The workload's `sub` in the platform's tokens. */
      readonly subject: string
      /** The most that may be granted (default: the resource's scopes). */
      readonly scopes?: readonly string[]
    }
