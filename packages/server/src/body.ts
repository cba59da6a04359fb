/**
 * Reading the request body: once, bounded, and refusing batches before any credential check.
 *
 * The body read here is the body the binding is checked against and the body the MCP SDK
 * executes (it is handed on as `parsedBody`): parsing twice would let a body that two parsers
 * read differently pass the binding check as one message and run as another.
 *
 * @module
 */
import { CallproofError } from '@callproof/core'

/** The default body limit: 1 MiB. */
export const DEFAULT_BODY_LIMIT = 1024 * 1024

/**
 * Reads and parses a JSON body of at most `limit` bytes.
 *
 * - over the limit → `ERR_BODY_TOO_LARGE` (413), decided from `Content-Length` when present and
 *   otherwise while streaming, so an oversized body is never buffered whole;
 * - not UTF-8 or not JSON → `ERR_MALFORMED_BODY` (400);
 * - a JSON array (a JSON-RPC batch) → `ERR_BATCH_NOT_SUPPORTED` (400): one proof binds one
 *   message, and a batch would let one proof carry calls it does not name.
 *
 * @example
 * ```ts
 * const message = await readJsonBody(c.req.raw, DEFAULT_BODY_LIMIT)
 * ```
 */
export async function readJsonBody(
  request: Request,
  limit: number,
  from: { readonly body?: BodySource; readonly headers?: Pick<Headers, 'get'> } = {},
): Promise<unknown> {
  const source = from.body
  const declared = (from.headers ?? request.headers).get('content-length')
  if (declared !== null && /^\d+$/.test(declared) && Number(declared) > limit) {
    // The server adapter drains or closes what is left of a body nobody reads.
    if (source === undefined) await request.body?.cancel().catch(() => undefined)
    throw tooLarge(limit)
  }
  const bytes =
    source === undefined ? await readLimited(request, limit) : await readFrom(source, limit)
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch (cause) {
    throw new CallproofError('ERR_MALFORMED_BODY', 'request body is not valid UTF-8', { cause })
  }
  let message: unknown
  try {
    message = JSON.parse(text)
  } catch (cause) {
    throw new CallproofError('ERR_MALFORMED_BODY', 'request body is not JSON', { cause })
  }
  if (Array.isArray(message)) {
    throw new CallproofError(
      'ERR_BATCH_NOT_SUPPORTED',
      'JSON-RPC batches are not supported: send one message per request',
    )
  }
  if (typeof message !== 'object' || message === null) {
    throw new CallproofError('ERR_MALFORMED_BODY', 'request body is not a JSON-RPC message object')
  }
  return message
}

async function readLimited(request: Request, limit: number): Promise<Uint8Array> {
  if (request.body === null) return new Uint8Array(0)
  const reader = request.body.getReader()
  const chunks: Uint8Array[] = []
  let total = 0
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      total += value.byteLength
      if (total > limit) {
        await reader.cancel().catch(() => undefined)
        throw tooLarge(limit)
      }
      chunks.push(value)
    }
  } catch (cause) {
    if (cause instanceof CallproofError) throw cause
    throw new CallproofError('ERR_MALFORMED_BODY', 'request body could not be read', { cause })
  }
  return concat(chunks, total)
}

/**
 * Where the body's bytes come from when not from `request.body`: resolves with them, or with
 * `undefined` as soon as more than `limit` bytes arrived (the rest is not buffered).
 */
export type BodySource = (limit: number) => Promise<Uint8Array | undefined>

async function readFrom(source: BodySource, limit: number): Promise<Uint8Array> {
  let bytes: Uint8Array | undefined
  try {
    bytes = await source(limit)
  } catch (cause) {
    throw new CallproofError('ERR_MALFORMED_BODY', 'request body could not be read', { cause })
  }
  if (bytes === undefined) throw tooLarge(limit)
  return bytes
}

export function concat(chunks: readonly Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!
  const out = new Uint8Array(total)
  let offset = 0
  for (const chunk of chunks) {
    out.set(chunk, offset)
    offset += chunk.byteLength
  }
  return out
}

function tooLarge(limit: number): CallproofError {
  return new CallproofError('ERR_BODY_TOO_LARGE', `request body is larger than ${limit} bytes`)
}
