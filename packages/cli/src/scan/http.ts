/**
 * The scanner's HTTP: every request bounded in time, every answer bounded in size, redirects
 * never followed (a credential must not travel to wherever a server points), and each exchange
 * reported to `--verbose` with its secrets named, not printed.
 */
import { jsonPayloads } from '../wire.js'
import { parseWwwAuthenticate } from '@callproof/core'
import { safeText } from '../terminal.js'

/** Per-request time limit (ms). */
export const REQUEST_TIMEOUT_MS = 10_000
/** Largest answer body read (bytes); a larger one is cut and reported as such. */
export const MAX_ANSWER_BYTES = 1024 * 1024

/** One request exactly as it goes on the wire, so that it can be sent again byte for byte. */
export interface WireRequest {
  readonly method: string
  readonly url: string
  readonly headers: Readonly<Record<string, string>>
  readonly body?: string
}

/** What came back, reduced to what the checks decide on. */
export interface Answer {
  readonly status: number
  /** The first `WWW-Authenticate` challenge's scheme (`Bearer`, `DPoP`), when there is one. */
  readonly scheme?: string
  /** Its `error` parameter (`''` when it has none). */
  readonly challenge?: string
  /** Its `error_description`, or the body's, escaped and cut. */
  readonly description?: string
  /** The session id the server handed out. */
  readonly sessionId?: string
  /** `Location` of a redirect that was not followed, escaped. */
  readonly redirect?: string
  /** The JSON-RPC answer, when the request got that far. */
  readonly rpc?: {
    readonly result?: unknown
    readonly error?: { code?: unknown; message?: unknown }
  }
  /** The body was larger than {@link MAX_ANSWER_BYTES} and was not read to its end. */
  readonly truncated?: boolean
}

/** Receives one line per request sent and per answer (`--verbose`). */
export type WireLog = (line: string) => void

/**
 * Wraps `base` so that each request gives up after {@link REQUEST_TIMEOUT_MS}, never follows a
 * redirect, and yields a body of at most {@link MAX_ANSWER_BYTES}. The `init` is passed on
 * otherwise unchanged (the callproof client's SSRF guard travels in it).
 */
export function boundedFetch(
  base: typeof fetch = fetch,
  limits: { readonly timeoutMs?: number; readonly maxBytes?: number } = {},
): typeof fetch {
  const maxBytes = limits.maxBytes ?? MAX_ANSWER_BYTES
  return async (input, init) => {
    const timeout = AbortSignal.timeout(limits.timeoutMs ?? REQUEST_TIMEOUT_MS)
    const signal = init?.signal == null ? timeout : AbortSignal.any([init.signal, timeout])
    const response = await base(input, { ...init, signal, redirect: 'manual' })
    if (response.body === null) return response
    let seen = 0
    const limit = new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        seen += chunk.byteLength
        if (seen > maxBytes) {
          controller.error(new AnswerTooLargeError(maxBytes))
          return
        }
        controller.enqueue(chunk)
      },
    })
    return new Response(response.body.pipeThrough(limit), {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    })
  }
}

/** An answer body over {@link MAX_ANSWER_BYTES}. */
export class AnswerTooLargeError extends Error {
  constructor(maxBytes = MAX_ANSWER_BYTES) {
    super(`the answer is larger than ${maxBytes} bytes`)
    this.name = this.constructor.name
  }
}

/** Reads a response (JSON or a short SSE stream) into an {@link Answer}. */
export async function readAnswer(response: Response): Promise<Answer> {
  const header = response.headers.get('www-authenticate')
  const first = header === null ? undefined : parseWwwAuthenticate(header)[0]
  const sessionId = response.headers.get('mcp-session-id') ?? undefined
  const location = response.headers.get('location')
  let text = ''
  let truncated = false
  try {
    text = await response.text()
  } catch (error) {
    // Only the size limit is an answer; a connection lost mid-body is the scan failing.
    if (!(error instanceof AnswerTooLargeError)) throw error
    truncated = true
  }
  const type = response.headers.get('content-type') ?? ''
  let rpc: Answer['rpc']
  let description = first?.params.error_description
  for (const j of jsonPayloads(text, type)) {
    if (j.jsonrpc === '2.0' && ('result' in j || 'error' in j)) {
      rpc = j as NonNullable<Answer['rpc']>
    } else if (description === undefined) {
      const d = j.error_description ?? j.error ?? j.message
      if (typeof d === 'string') description = d
    }
  }
  return {
    status: response.status,
    ...(first === undefined ? {} : { scheme: first.scheme, challenge: first.params.error ?? '' }),
    ...(description === undefined ? {} : { description: safeText(description, { max: 120 }) }),
    ...(sessionId === undefined ? {} : { sessionId }),
    ...(location === null ? {} : { redirect: safeText(location, { max: 120 }) }),
    ...(rpc === undefined ? {} : { rpc }),
    ...(truncated ? { truncated: true } : {}),
  }
}

/** Whether the server answered the JSON-RPC request with a result: it served it. */
export function served(answer: Answer | undefined): boolean {
  return (
    answer !== undefined &&
    answer.status >= 200 &&
    answer.status < 300 &&
    answer.rpc?.result !== undefined
  )
}

/** An answer in a few words: `401 invalid_token (DPoP challenge): why`. */
export function describeAnswer(answer: Answer): string {
  const parts = [String(answer.status)]
  if (answer.challenge !== undefined && answer.challenge !== '') parts.push(answer.challenge)
  if (answer.scheme !== undefined) parts.push(`(${safeText(answer.scheme, { max: 20 })} challenge)`)
  if (answer.rpc?.error !== undefined) {
    parts.push(`JSON-RPC error ${safeText(answer.rpc.error.code, { max: 12 })}`)
    if (answer.rpc.error.message !== undefined) {
      parts.push(safeText(answer.rpc.error.message, { max: 80 }))
    }
  } else if (answer.description !== undefined && answer.description !== answer.challenge) {
    parts.push(answer.description)
  }
  if (answer.redirect !== undefined) parts.push(`redirect to ${answer.redirect}, not followed`)
  if (answer.truncated === true) parts.push('(answer over 1 MiB, not read)')
  return parts.join(' ')
}

/**
 * Names what a request carried without printing a secret: `Bearer <token, 812 chars>`,
 * `<DPoP proof, 640 chars>`, the first characters of a session id.
 */
export function describeRequest(request: WireRequest): string {
  const h = request.headers
  const credentials: string[] = []
  const authorization = h.authorization ?? h.Authorization
  if (authorization !== undefined) {
    const [scheme = '', token = ''] = authorization.split(/\s+/, 2)
    credentials.push(
      `authorization: ${safeText(scheme, { max: 10 })} <token, ${token.length} chars>`,
    )
  }
  if (h.dpop !== undefined) credentials.push(`dpop: <proof, ${h.dpop.length} chars>`)
  const session = h['mcp-session-id']
  if (session !== undefined) {
    credentials.push(`mcp-session-id: ${safeText(session.slice(0, 8), { max: 8 })}…`)
  }
  const body = request.body === undefined ? '' : ` ${safeText(request.body, { max: 160 })}`
  const carried = credentials.length === 0 ? 'no credentials' : credentials.join(', ')
  return `${request.method} ${safeText(request.url, { max: 120 })} [${carried}]${body}`
}

/** Sends `request` as it is (bounded), logs it, and reads the answer. */
export async function sendRaw(request: WireRequest, log?: WireLog): Promise<Answer> {
  log?.(`→ ${describeRequest(request)}`)
  const response = await boundedFetch()(request.url, {
    method: request.method,
    headers: request.headers,
    ...(request.body === undefined ? {} : { body: request.body }),
  })
  const answer = await readAnswer(response)
  log?.(`← ${describeAnswer(answer)}`)
  return answer
}
