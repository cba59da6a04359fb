/**
 * The 2026-07-28 routing headers (SEP-2243) against the message they describe. SDK v2 mirrors a
 * request's `method` into `Mcp-Method` and its name (`params.name`, `params.uri`, `params.taskId`)
 * into `Mcp-Name`, for intermediaries that route and filter on headers without reading the body.
 * The proof's `mcp` claim is computed from the body; a request whose headers name another method
 * or tool than its body would let a gateway allow `read_file` while the server runs
 * `delete_file`. So the proof fetch refuses to sign such a request: headers, body and proof
 * always name the same call.
 *
 * @module
 */

import { CallproofClientError } from './errors.js'

/** The body field `Mcp-Name` mirrors, per method (SEP-2243). */
const NAME_SOURCE: Readonly<Record<string, string>> = {
  'tools/call': 'name',
  'prompts/get': 'name',
  'resources/read': 'uri',
  'tasks/get': 'taskId',
  'tasks/update': 'taskId',
  'tasks/cancel': 'taskId',
}

const BASE64_PREFIX = '=?base64?'
const BASE64_SUFFIX = '?='

/**
 * A header value as SEP-2243 encodes it: plain printable ASCII, or `=?base64?<UTF-8 base64>?=`
 * for anything else. `undefined` for a base64 form that does not decode.
 */
function decodeHeaderValue(value: string): string | undefined {
  if (!value.startsWith(BASE64_PREFIX) || !value.endsWith(BASE64_SUFFIX)) return value
  const encoded = value.slice(BASE64_PREFIX.length, value.length - BASE64_SUFFIX.length)
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(encoded)) return undefined
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(encoded, 'base64'))
  } catch {
    return undefined
  }
}

function mismatch(header: string, found: string, expected: string | undefined): never {
  // Values are bounded and quoted: a header is the caller's, but a tool name may come from a
  // server's tools/list.
  const show = (s: string) => JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s)
  throw new CallproofClientError(
    'ERR_BINDING_MISMATCH',
    `refusing to sign a request whose ${header} header (${show(found)}) does not match its body (${expected === undefined ? 'no such field' : show(expected)}): the proof binds the body`,
  )
}

/**
 * Throws unless the request's `Mcp-Method` and `Mcp-Name` headers, where present, name what its
 * JSON-RPC body names. Requests without them (SDK v1, the 2025-11-25 revision) pass unchanged.
 *
 * @throws {@link CallproofClientError} `ERR_BINDING_MISMATCH`
 * @example
 * ```ts
 * assertRoutingHeadersMatch(new Headers({ 'mcp-method': 'tools/list' }), { jsonrpc: '2.0', id: 1, method: 'tools/list' })
 * ```
 * @see https://modelcontextprotocol.io/seps/2243-http-standardization
 */
export function assertRoutingHeadersMatch(headers: Headers, message: unknown): void {
  const method = headers.get('mcp-method')
  const name = headers.get('mcp-name')
  if (method === null && name === null) return
  const body = (typeof message === 'object' && message !== null ? message : {}) as {
    method?: unknown
    params?: Record<string, unknown>
  }
  const bodyMethod = typeof body.method === 'string' ? body.method : undefined
  if (method !== null && method !== bodyMethod) mismatch('Mcp-Method', method, bodyMethod)
  if (name === null) return
  const field = bodyMethod !== undefined ? NAME_SOURCE[bodyMethod] : undefined
  const raw = field !== undefined ? body.params?.[field] : undefined
  const bodyName = typeof raw === 'string' ? raw : undefined
  if (decodeHeaderValue(name) !== bodyName || bodyName === undefined) {
    mismatch('Mcp-Name', name, bodyName)
  }
}
