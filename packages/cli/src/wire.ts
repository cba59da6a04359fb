/**
 * Raw MCP Streamable HTTP, one request at a time: what the demo's second agent uses to send
 * exactly the bytes it wants (a copied token, a captured proof, a changed argument) and what both
 * agents use to describe what came back.
 */
import { parseWwwAuthenticate } from '@callproof/core'

/** The MCP protocol revision raw requests announce when none was seen on the wire. */
export const PROTOCOL_VERSION = '2025-11-25'

/** One HTTP request as sent on the wire (what a sniffer on loopback would capture). */
export interface WireRequest {
  readonly method: string
  readonly url: string
  readonly headers: Record<string, string>
  readonly body?: string
}

/** What came back, reduced to what the demo explains. */
export interface Observation {
  readonly status: number
  /** The `error` of the `WWW-Authenticate` challenge; `''` for a challenge without one. */
  readonly challenge?: string
  /** The `WWW-Authenticate` header as sent. */
  readonly challengeHeader?: string
  /** callproof's machine-readable refusal code from the JSON body (e.g. `ERR_REPLAY`). */
  readonly code?: string
  /** The server's human-readable reason (`error_description`). */
  readonly description?: string
  /** The JSON-RPC result or error, when the request got that far. */
  readonly rpc?: { result?: unknown; error?: { code: number; message: string } }
  /** The session id the server handed out (on `initialize`). */
  readonly sessionId?: string
}

/** One request and what came back to it: what the lesson shows of a step. */
export interface WireExchange {
  readonly request: WireRequest
  readonly answer: Observation
}

/** Sends one request and reads the answer (JSON or a short SSE stream). */
export async function send(
  request: WireRequest,
  fetchImpl: typeof fetch = fetch,
): Promise<Observation> {
  const response = await fetchImpl(request.url, {
    method: request.method,
    headers: request.headers,
    ...(request.body === undefined ? {} : { body: request.body }),
  })
  return observe(response)
}

/** Describes a response: status, challenge, refusal code and JSON-RPC payload. */
export async function observe(response: Response): Promise<Observation> {
  const header = response.headers.get('www-authenticate')
  let challenge: string | undefined
  if (header !== null) {
    const parsed = parseWwwAuthenticate(header)
    challenge = parsed[0]?.params.error ?? ''
  }
  const sessionId = response.headers.get('mcp-session-id') ?? undefined
  const text = await response.text()
  const type = response.headers.get('content-type') ?? ''
  let code: string | undefined
  let description: string | undefined
  let rpc: Observation['rpc']
  for (const j of jsonPayloads(text, type)) {
    if (j.jsonrpc === '2.0' && ('result' in j || 'error' in j)) {
      rpc = j as NonNullable<Observation['rpc']>
    } else {
      if (typeof j.code === 'string') code = j.code
      if (typeof j.error_description === 'string') description = j.error_description
      else if (typeof j.error === 'string' && description === undefined) description = j.error
    }
  }
  return {
    status: response.status,
    ...(challenge === undefined ? {} : { challenge }),
    ...(header === null ? {} : { challengeHeader: header }),
    ...(code === undefined ? {} : { code }),
    ...(description === undefined ? {} : { description }),
    ...(rpc === undefined ? {} : { rpc }),
    ...(sessionId === undefined ? {} : { sessionId }),
  }
}

/** The headers every MCP POST carries, plus the caller's own. */
export function mcpHeaders(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
  }
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) headers[k] = v
  return headers
}

/** The text of a tool result (`content[].text` joined), or undefined when there is none. */
export function toolText(rpc: Observation['rpc']): string | undefined {
  const result = rpc?.result as { content?: { type?: string; text?: string }[] } | undefined
  const texts = result?.content?.filter((c) => c.type === 'text').map((c) => c.text ?? '')
  return texts === undefined || texts.length === 0 ? undefined : texts.join('\n')
}

/** Whether a tool result is a tool-level error (`isError`) or a JSON-RPC error. */
export function toolFailed(rpc: Observation['rpc']): boolean {
  return (
    rpc?.error !== undefined || (rpc?.result as { isError?: boolean } | undefined)?.isError === true
  )
}

/**
 * The JSON objects of an HTTP answer's body: each SSE `data:` line of an event stream, or the
 * whole body; what is not a JSON object is skipped.
 */
export function jsonPayloads(text: string, contentType: string): Record<string, unknown>[] {
  const payloads = contentType.includes('text/event-stream')
    ? text
        .split(/\r?\n/)
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).trim())
    : [text]
  const objects: Record<string, unknown>[] = []
  for (const payload of payloads) {
    let json: unknown
    try {
      json = JSON.parse(payload)
    } catch {
      continue
    }
    if (typeof json === 'object' && json !== null) objects.push(json as Record<string, unknown>)
  }
  return objects
}
