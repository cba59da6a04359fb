/**
 * Who is calling and what was approved: the types that errors, policies and the verifier all
 * speak of. A module of its own so that `errors.ts` and `policy.ts` need not import each other.
 *
 * @module
 */

/**
 * The verified caller of one request, as tools and policies see it.
 *
 * @example
 * ```ts
 * const { sub, clientId, jkt } = call.caller
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9068#section-2.2
 */
export interface Caller {
  /** The user (`sub`). */
  sub: string
  /** The OAuth client (`client_id`). */
  clientId: string
  /** The thumbprint of the key that signed this request's proof (= `cnf.jkt`). */
  jkt: string
  /** The authentication context class of the login. */
  acr?: string
  /** When the user logged in, seconds since the epoch. */
  authTime?: number
  /** The access token's `jti`. */
  tokenId: string
  /** The token's scopes. */
  scopes: readonly string[]
}

/**
 * An approval of one tool call (RFC 9396 authorization details type `mcp_tool_call`).
 *
 * @example
 * ```ts
 * const detail: McpToolCallAuthorizationDetail = { type: 'mcp_tool_call', resource, tool: 'share_file', args: await argsDigest(args) }
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9396#section-2
 */
export interface McpToolCallAuthorizationDetail {
  type: 'mcp_tool_call'
  /** The resource URI of the server the call goes to. */
  resource: string
  /** The tool's name. */
  tool: string
  /** {@link argsDigest} of the call's arguments. */
  args: string
}
