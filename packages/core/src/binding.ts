/**
 * The call binding: the `mcp` claim of a DPoP proof that names the one JSON-RPC message it may
 * carry, and the argument digest over RFC 8785 (JCS) canonical JSON.
 *
 * Without it a proof only says "POST to /mcp", so whoever sees one in flight (a proxy log, a
 * co-tenant of the process) could put another tool call under it within the proof's lifetime.
 *
 * @module
 */

import canonicalize from 'canonicalize'
import { CallproofError } from './errors.js'
import { isObject, sha256Base64url } from './encoding.js'

/**
 * The `mcp` claim: what one JSON-RPC message is.
 *
 * - a request or notification: `{ method, name?, args? }` (`name` is `params.name` for
 *   `tools/call` / `prompts/get`, `params.uri` for `resources/read`, `resources/subscribe` and
 *   `resources/unsubscribe`; `args` is the {@link argsDigest} of `params.arguments` for
 *   `tools/call` and `prompts/get`; `initialize` and notifications bind `{ method }` only);
 * - a response (or error) to a server request: `{ response: id }`.
 *
 * @example
 * ```ts
 * const mcp: McpBinding = { method: 'tools/call', name: 'delete_file', args: await argsDigest({ path: 'a.txt' }) }
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-4.2
 */
export type McpBinding =
  { method: string; name?: string; args?: string } | { response: string | number }

/**
 * base64url(SHA-256(JCS(args ?? {}))): the digest of a tool call's (or prompt's) arguments over
 * their RFC 8785 canonical JSON, so that the client and the server agree on it whatever the
 * key order or number spelling on the wire. Throws ERR_MALFORMED_BODY for values JSON cannot
 * carry (lone surrogates, NaN, cycles).
 *
 * @example
 * ```ts
 * await argsDigest({ path: 'notes.txt' }) // the same as await argsDigest({ 'path': 'notes.txt' })
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc8785
 */
export async function argsDigest(args: unknown): Promise<string> {
  let canonical: string | undefined
  try {
    canonical = canonicalize(args ?? {})
  } catch (cause) {
    throw new CallproofError('ERR_MALFORMED_BODY', 'arguments are not canonicalizable JSON', {
      cause,
    })
  }
  if (canonical === undefined) {
    throw new CallproofError('ERR_MALFORMED_BODY', 'arguments are not JSON')
  }
  return sha256Base64url(canonical)
}

/** Methods whose `params.name` is bound and whose `params.arguments` are digested. */
const NAMED_WITH_ARGS = new Set(['tools/call', 'prompts/get'])
/** Methods whose `params.uri` is bound as `name`. */
const NAMED_BY_URI = new Set(['resources/read', 'resources/subscribe', 'resources/unsubscribe'])

function malformed(message: string): CallproofError {
  return new CallproofError('ERR_MALFORMED_BODY', message)
}

/**
 * The binding of one parsed JSON-RPC message, i.e. the `mcp` claim a proof for it must carry.
 * Throws ERR_BATCH_NOT_SUPPORTED for an array (batch) and ERR_MALFORMED_BODY for anything that
 * is not a JSON-RPC 2.0 request, notification or response.
 *
 * @example
 * ```ts
 * const binding = await bindingFor(JSON.parse(body))
 * // { method: 'tools/call', name: 'read_file', args: 'N3…' }
 * ```
 * @see https://www.jsonrpc.org/specification
 */
export async function bindingFor(message: unknown): Promise<McpBinding> {
  const shape = bindingShape(message)
  if (!('method' in shape) || !NAMED_WITH_ARGS.has(shape.method) || shape.name === undefined) {
    return shape
  }
  const params = (message as { params?: { arguments?: unknown } }).params
  return { ...shape, args: await argsDigest(params?.arguments) }
}

/**
 * Every check {@link bindingFor} makes of a message's shape, and its binding WITHOUT the `args`
 * digest: no canonicalisation, no hashing, cost independent of the arguments' size. A server runs
 * it before any credential is examined (a malformed message is refused with 400 for anyone), and
 * leaves the digest to the verifier, which computes it only for a valid token — so an anonymous
 * sender cannot make it canonicalise and hash arbitrary arguments. Throws exactly what
 * `bindingFor` throws for the same message, except for arguments that cannot be canonicalised.
 *
 * @example
 * ```ts
 * bindingShape({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'read_file', arguments: { path: 'a' } } })
 * // { method: 'tools/call', name: 'read_file' }
 * ```
 * @see https://www.jsonrpc.org/specification
 */
export function bindingShape(message: unknown): McpBinding {
  if (Array.isArray(message)) {
    throw new CallproofError('ERR_BATCH_NOT_SUPPORTED', 'JSON-RPC batches are not supported')
  }
  if (!isObject(message)) throw malformed('the body is not a JSON-RPC message object')
  if (message.jsonrpc !== '2.0') throw malformed('the body is not JSON-RPC 2.0 (jsonrpc != "2.0")')
  const hasId = 'id' in message
  const id = message.id
  if (hasId && typeof id !== 'string' && !(typeof id === 'number' && Number.isFinite(id))) {
    throw malformed('JSON-RPC id must be a string or a number')
  }

  if ('method' in message) {
    const method = message.method
    if (typeof method !== 'string' || method.length === 0) {
      throw malformed('JSON-RPC method must be a non-empty string')
    }
    const params = message.params
    if (params !== undefined && !isObject(params)) {
      throw malformed(`params of ${method} must be an object`)
    }
    // Notifications bind their method only (initialize and every other request fall through to
    // the last line): they carry nothing that names a tool, prompt or resource.
    if (!hasId) return { method }
    if (NAMED_WITH_ARGS.has(method)) {
      const name = params?.name
      if (typeof name !== 'string') throw malformed(`params.name of ${method} must be a string`)
      return { method, name }
    }
    if (NAMED_BY_URI.has(method)) {
      const uri = params?.uri
      if (typeof uri !== 'string') throw malformed(`params.uri of ${method} must be a string`)
      return { method, name: uri }
    }
    return { method }
  }

  if (hasId && ('result' in message || 'error' in message)) {
    return { response: id as string | number }
  }
  throw malformed('the body is neither a JSON-RPC request, notification nor response')
}

/**
 * True when `claim` (a proof's `mcp` claim, untrusted) describes exactly `binding`: the same
 * members, each strictly equal (a response id `1` is not `"1"`), nothing extra.
 *
 * @example
 * ```ts
 * if (!bindingsEqual(proof.mcp, await bindingFor(message))) throw new CallproofError('ERR_BINDING_MISMATCH', '…')
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-4.2
 */
export function bindingsEqual(claim: unknown, binding: McpBinding): boolean {
  if (!isObject(claim)) return false
  // Counted and compared without building arrays: this runs on every call.
  const expected = binding as Record<string, unknown>
  let expectedCount = 0
  for (const key in expected) {
    if (!Object.prototype.hasOwnProperty.call(expected, key)) continue
    const value = expected[key]
    if (value === undefined) continue
    expectedCount++
    if (!Object.prototype.hasOwnProperty.call(claim, key) || claim[key] !== value) return false
  }
  let actualCount = 0
  for (const key in claim) {
    if (Object.prototype.hasOwnProperty.call(claim, key) && claim[key] !== undefined) actualCount++
  }
  return actualCount === expectedCount
}

/** A short, secret-free description of a binding for error messages. */
export function describeBinding(binding: unknown): string {
  if (!isObject(binding)) return 'none'
  if ('response' in binding) return `response ${bounded(JSON.stringify(binding.response))}`
  const name = typeof binding.name === 'string' ? ` ${bounded(binding.name)}` : ''
  return `${bounded(String(binding.method))}${name}${binding.args !== undefined ? ' (args digest)' : ''}`
}

/**
 * Why a proof's binding is not the body's, in words a person can act on: when only the arguments
 * differ, both descriptions would read alike, so the two digests are named (their first
 * characters: enough to tell them apart, and digests reveal nothing of the arguments).
 */
export function bindingMismatch(proof: unknown, body: unknown): string {
  const said = describeBinding(proof)
  const is = describeBinding(body)
  if (said !== is) return `proof binds ${said} but the body is ${is}`
  const digest = (binding: unknown) =>
    isObject(binding) && typeof binding.args === 'string'
      ? `${binding.args.slice(0, 10)}...`
      : 'none'
  const what = said.replace(/ \(args digest\)$/, '')
  return `proof binds ${what} with other arguments (args digest ${digest(proof)}, the body's ${digest(body)}): the body changed after it was signed`
}

/** Untrusted text in a reason: cut to a length a person reads (ASCII: it may travel in a header). */
const bounded = (text: string): string => (text.length > 64 ? `${text.slice(0, 64)}...` : text)
