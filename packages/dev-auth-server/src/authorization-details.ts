import { createHash } from 'node:crypto'
import canonicalize from 'canonicalize'

/** The RFC 9396 authorization details type of a per-call approval. */
export const MCP_TOOL_CALL = 'mcp_tool_call'

/**
 * A per-call approval as requested by a client and as issued in the access token's
 * `authorization_details` claim (RFC 9396 §2): one tool call at one resource, named by the tool and
 * the digest of its arguments.
 */
export interface McpToolCallDetail {
  readonly type: 'mcp_tool_call'
  /** The resource URI (RFC 8707) of the MCP server that will run the call. */
  readonly resource: string
  /** The tool's name (`params.name` of `tools/call`). */
  readonly tool: string
  /** base64url(SHA-256(RFC 8785 canonical JSON of `params.arguments`, `{}` when absent)). */
  readonly args: string
  /**
   * The arguments themselves, for display on the approval page only. When present they must hash
   * to `args`, so that what the user reads is exactly what the token allows.
   */
  readonly arguments?: Readonly<Record<string, unknown>>
}

/** Why an authorization details entry was refused; the message is safe to show to the client. */
export class AuthorizationDetailsError extends Error {
  override readonly name = 'AuthorizationDetailsError'
}

const TOOL_NAME = /^[A-Za-z0-9_.\-/]{1,128}$/
const SHA256_B64U = /^[A-Za-z0-9_-]{43}$/
const ALLOWED_MEMBERS = new Set(['type', 'resource', 'tool', 'args', 'arguments'])

/**
 * The callproof argument digest: base64url(SHA-256(JCS(args ?? {}))) (RFC 8785). It must equal
 * `@callproof/core`'s `argsDigest`; a test holds the two together.
 */
export function argumentsDigest(args: unknown): string {
  const json = canonicalize(args ?? {})
  if (json === undefined) throw new AuthorizationDetailsError('arguments are not JSON')
  return createHash('sha256').update(json, 'utf8').digest('base64url')
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false
  const proto = Object.getPrototypeOf(value) as unknown
  return proto === Object.prototype || proto === null
}

/**
 * Validates one `mcp_tool_call` entry strictly: no unknown members, a known resource, a plain tool
 * name, a SHA-256 digest, and display arguments (when given) that hash to that digest. Strictness
 * is the point: whatever the token says is what the user was shown.
 *
 * @param detail - one member of the `authorization_details` array
 * @param resources - the resource URIs this server issues tokens for
 * @throws {@link AuthorizationDetailsError} naming what was wrong
 * @see https://www.rfc-editor.org/rfc/rfc9396#section-5
 */
export function validateMcpToolCall(
  detail: unknown,
  resources: readonly string[],
): McpToolCallDetail {
  if (!isPlainObject(detail)) throw new AuthorizationDetailsError('entry must be a JSON object')
  if (detail.type !== MCP_TOOL_CALL) {
    throw new AuthorizationDetailsError(`unsupported type ${JSON.stringify(detail.type)}`)
  }
  for (const key of Object.keys(detail)) {
    if (!ALLOWED_MEMBERS.has(key)) {
      throw new AuthorizationDetailsError(`unknown member "${key}" in ${MCP_TOOL_CALL}`)
    }
  }
  const { resource, tool, args } = detail
  if (typeof resource !== 'string' || !resources.includes(resource)) {
    throw new AuthorizationDetailsError(
      `resource ${JSON.stringify(resource)} is not one of this server's resources`,
    )
  }
  if (typeof tool !== 'string' || !TOOL_NAME.test(tool)) {
    throw new AuthorizationDetailsError('tool must be a tool name (letters, digits, _ . - /)')
  }
  if (typeof args !== 'string' || !SHA256_B64U.test(args)) {
    throw new AuthorizationDetailsError('args must be a base64url SHA-256 digest (43 characters)')
  }
  if (detail.arguments !== undefined) {
    if (!isPlainObject(detail.arguments)) {
      throw new AuthorizationDetailsError('arguments must be a JSON object')
    }
    // Without this check a client could show the user harmless arguments while the token
    // authorizes other ones.
    if (argumentsDigest(detail.arguments) !== args) {
      throw new AuthorizationDetailsError('arguments do not match the args digest')
    }
    return { type: MCP_TOOL_CALL, resource, tool, args, arguments: detail.arguments }
  }
  return { type: MCP_TOOL_CALL, resource, tool, args }
}

/** Whether a value is a list of authorization details that holds at least one `mcp_tool_call`. */
export function hasToolCall(details: unknown): boolean {
  return Array.isArray(details) && details.some((d) => isPlainObject(d) && d.type === MCP_TOOL_CALL)
}

/** The entry as it goes into the access token: without the display-only `arguments`. */
export function forToken(detail: McpToolCallDetail): McpToolCallDetail {
  return { type: detail.type, resource: detail.resource, tool: detail.tool, args: detail.args }
}
