/**
 * The `Mcp-Method` and `Mcp-Name` request headers of MCP 2026-07-28 (SEP-2243), checked against
 * the body AND against the proof's `mcp` binding before anything is spent on the request.
 *
 * The SDK v2 checks the headers against the body too, but only when it runs the request: after
 * callproof's policy step has consumed a one-time approval and written the `allowed` audit event.
 * A request whose headers lie is refused here, first, with `ERR_HEADER_MISMATCH` (400).
 *
 * Why both the body and the binding: the verifier has already proven that the binding describes
 * the body (docs/protocol.md §6.3), so a header that equals the body equals the binding. The
 * second comparison costs nothing and keeps the rule true by itself: a gateway or load balancer
 * that routes on the headers (which is what SEP-2243 has them for) routes on what the caller
 * signed, whatever the body parser thought.
 *
 * @module
 */
import { CallproofError } from '@callproof/core'
import type { McpBinding } from '@callproof/core'

/** The first revision whose requests carry the per-request envelope and these headers. */
export const FIRST_MODERN_REVISION = '2026-07-28'
/** Where a 2026-07-28 request names its revision (SEP-2575): `params._meta[...]`. */
export const PROTOCOL_VERSION_META_KEY = 'io.modelcontextprotocol/protocolVersion'

/**
 * The body member `Mcp-Name` mirrors, by method (SEP-2243's table; the same members the `mcp`
 * claim binds as `name`, docs/protocol.md §6.3).
 */
const NAME_SOURCE: Readonly<Record<string, 'name' | 'uri'>> = {
  'tools/call': 'name',
  'prompts/get': 'name',
  'resources/read': 'uri',
}

/** SEP-2243: a value that is not plain visible ASCII travels as `=?base64?<base64 of UTF-8>?=`. */
const SENTINEL_PREFIX = '=?base64?'
const SENTINEL_SUFFIX = '?='
const CANONICAL_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/**
 * Whether `message` is a 2026-07-28 (or later) request: its `_meta` envelope names a modern
 * revision, or its `MCP-Protocol-Version` header does. The SDK routes on the same signals.
 */
export function isModernRequest(request: Request, message: unknown): boolean {
  const header = request.headers.get('mcp-protocol-version')?.trim()
  if (header !== undefined && header >= FIRST_MODERN_REVISION) return true
  const claimed = envelopeVersionOf(message)
  return claimed !== undefined && claimed >= FIRST_MODERN_REVISION
}

/** The revision a message's `_meta` envelope names, if it names one. */
export function envelopeVersionOf(message: unknown): string | undefined {
  const params = (message as { params?: unknown } | undefined)?.params
  if (typeof params !== 'object' || params === null) return undefined
  const meta = (params as { _meta?: unknown })._meta
  if (typeof meta !== 'object' || meta === null) return undefined
  const version = (meta as Record<string, unknown>)[PROTOCOL_VERSION_META_KEY]
  return typeof version === 'string' ? version : undefined
}

/**
 * Why the `Mcp-Method`/`Mcp-Name` headers of this POST cannot be trusted, as a CallproofError
 * `ERR_HEADER_MISMATCH`, or `undefined` when they agree with the body and the binding.
 *
 * On a 2026-07-28 request, `Mcp-Method` is required, and `Mcp-Name` is required for the methods
 * that name something. On an older request the headers are optional, but one that is present
 * must tell the truth too: whoever routes on it must not be lied to.
 *
 * `binding` is the proof's verified `mcp` claim (absent for an unbound proof, which the pipeline
 * admits only for what accepts one; then only the body is compared).
 */
export function headerRefusal(
  request: Request,
  message: unknown,
  binding: McpBinding | undefined,
): CallproofError | undefined {
  const m = message as { id?: unknown; method?: unknown; params?: Record<string, unknown> }
  if (typeof m?.method !== 'string') return undefined
  const modern = isModernRequest(request, message)
  const isRequest = 'id' in m
  const methodHeader = fieldValue(request.headers.get('mcp-method'))
  if (methodHeader === undefined) {
    if (modern && isRequest) return mismatch(`the Mcp-Method header is required (${cut(m.method)})`)
  } else {
    if (methodHeader !== m.method) {
      return mismatch(
        `the Mcp-Method header names ${cut(methodHeader)} but the body is ${cut(m.method)}`,
      )
    }
    if (binding !== undefined && (!('method' in binding) || binding.method !== methodHeader)) {
      return mismatch(`the Mcp-Method header ${cut(methodHeader)} is not what the proof binds`)
    }
  }
  const source = isRequest ? NAME_SOURCE[m.method] : undefined
  if (source === undefined) return undefined
  const bodyName = m.params?.[source]
  const nameHeader = fieldValue(request.headers.get('mcp-name'))
  if (nameHeader === undefined) {
    return modern && typeof bodyName === 'string'
      ? mismatch(`the Mcp-Name header is required for ${m.method} (params.${source})`)
      : undefined
  }
  const named = decodeName(nameHeader)
  if (named === undefined) return mismatch('the Mcp-Name header has an invalid base64 value')
  if (named !== bodyName) {
    return mismatch(`the Mcp-Name header does not match params.${source} of the body`)
  }
  if (binding !== undefined && (!('name' in binding) || binding.name !== named)) {
    return mismatch('the Mcp-Name header is not the name the proof binds')
  }
  return undefined
}

/** A header's value without the optional whitespace around it (RFC 9110 §5.5), if present. */
function fieldValue(value: string | null): string | undefined {
  return value === null ? undefined : value.replace(/^[ \t]+|[ \t]+$/g, '')
}

/** The name a `Mcp-Name` value carries: verbatim, or decoded from the base64 sentinel form. */
function decodeName(value: string): string | undefined {
  if (!value.startsWith(SENTINEL_PREFIX) || !value.endsWith(SENTINEL_SUFFIX)) return value
  const encoded = value.slice(SENTINEL_PREFIX.length, value.length - SENTINEL_SUFFIX.length)
  if (!CANONICAL_BASE64.test(encoded)) return undefined
  try {
    const bytes = Uint8Array.from(atob(encoded), (c) => c.charCodeAt(0))
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    return undefined
  }
}

function mismatch(message: string): CallproofError {
  return new CallproofError('ERR_HEADER_MISMATCH', message)
}

/** Untrusted text in a message: bounded (core's error descriptions are made header-safe). */
const cut = (text: string): string => (text.length > 64 ? `${text.slice(0, 64)}…` : text)
