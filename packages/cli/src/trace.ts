/**
 * What happens on the wire between a client and an MCP server, recorded for the demo's story and
 * shown live by `callproof call`: each exchange's status and challenge, and why the client went
 * back to the authorization server.
 */
import type { InteractionContext } from '@callproof/client'
import { decodeCredentials } from './credentials.js'
import type { DecodedJwt } from './credentials.js'
import { safeText } from './terminal.js'
import { observe } from './wire.js'
import type { Observation, WireRequest } from './wire.js'

/** One HTTP exchange between a client and an MCP server, as a sniffer on loopback would see it. */
export interface Exchange {
  readonly request: WireRequest
  readonly status: number
  readonly challenge?: string
  readonly challengeHeader?: string
  readonly rpcMethod?: string
  readonly tool?: string
  /**
   * The answer's status, challenge, refusal code and reason, and JSON-RPC payload, when
   * {@link RecordingOptions.answers} asks for them: set before `onExchange` for a refusal, once
   * the body has been read for a POST that was let through (see `settled()`).
   */
  answer?: Observation
}

/** Options of {@link recordingFetch}. */
export interface RecordingOptions {
  /** Read each answer to a POST (from a copy of its body) into {@link Exchange.answer}. */
  readonly answers?: boolean
}

/**
 * A `fetch` that records every exchange with `origin` and passes everything through unchanged.
 * `settled()` waits for the answers still being read.
 */
export function recordingFetch(
  origin: string,
  onExchange?: (exchange: Exchange) => void,
  options: RecordingOptions = {},
) {
  const exchanges: Exchange[] = []
  const reading = new Set<Promise<void>>()
  const recording: typeof fetch = async (input, init) => {
    const request = new Request(input, init)
    const response = await fetch(input, init)
    if (!request.url.startsWith(origin)) return response
    const body = typeof init?.body === 'string' ? init.body : undefined
    let rpcMethod: string | undefined
    let tool: string | undefined
    if (body !== undefined) {
      try {
        const message = JSON.parse(body) as { method?: unknown; params?: { name?: unknown } }
        if (typeof message.method === 'string') rpcMethod = message.method
        if (typeof message.params?.name === 'string') tool = message.params.name
      } catch {
        // not JSON: recorded without a method
      }
    }
    const headers: Record<string, string> = {}
    request.headers.forEach((value, key) => (headers[key] = value))
    const challengeHeader = response.headers.get('www-authenticate') ?? undefined
    const challenge =
      challengeHeader === undefined
        ? undefined
        : (/error="([^"]*)"/.exec(challengeHeader)?.[1] ?? '')
    const exchange: Exchange = {
      request: {
        method: request.method,
        url: request.url,
        headers,
        ...(body === undefined ? {} : { body }),
      },
      status: response.status,
      ...(challenge === undefined ? {} : { challenge }),
      ...(challengeHeader === undefined ? {} : { challengeHeader }),
      ...(rpcMethod === undefined ? {} : { rpcMethod }),
      ...(tool === undefined ? {} : { tool }),
    }
    if (options.answers === true && request.method === 'POST') {
      // A refusal is a short JSON body: read now, so that onExchange can show its reason. An
      // answer let through may be a stream the caller is still reading: read from a copy.
      const answered = observe(response.clone()).then(
        (answer) => void (exchange.answer = answer),
        () => undefined,
      )
      if (response.ok) {
        reading.add(answered)
        void answered.finally(() => reading.delete(answered))
      } else {
        await answered
      }
    }
    exchanges.push(exchange)
    onExchange?.(exchange)
    return response
  }
  const settled = async () => {
    await Promise.all([...reading])
  }
  return { fetch: recording, exchanges, settled }
}

/**
 * Dynamic registration metadata of the demo's agents: they declare the RAR type they use, so the
 * authorization server lets them ask for per-call approvals (RFC 9396 §10).
 */
export const AGENT_METADATA = (name: string) => ({
  client_name: name,
  authorization_details_types: ['mcp_tool_call'],
})

/** What the client did about a challenge, by the reason it gave its interaction. */
export const AFTER: Record<InteractionContext['reason'], string> = {
  authorize: 'sign-in',
  scope: 'scope step-up',
  step_up: 'MFA step-up',
  approval: 'approving this call',
}

/** A challenge in a few words: status, `error`, and the step-up parameters that matter. */
export function describeChallenge(exchange: Exchange): string {
  const header = exchange.challengeHeader ?? ''
  const param = (name: string) => new RegExp(`${name}="([^"]*)"`).exec(header)?.[1]
  switch (exchange.challenge) {
    case '':
      return `${exchange.status} no credentials yet`
    case 'insufficient_user_authentication':
      return `${exchange.status} insufficient_user_authentication (acr_values=${param('acr_values') ?? '?'}, max_age=${/max_age="?(\d+)/.exec(header)?.[1] ?? '?'})`
    case 'insufficient_scope':
      return `${exchange.status} insufficient_scope (scope=${param('scope') ?? '?'})`
    default:
      return `${exchange.status} ${exchange.challenge ?? ''}`.trim()
  }
}

/** The most characters of one traced value (a header, a decoded claim set). */
const TRACE_MAX = 2000

/**
 * `callproof call --trace`: what one exchange carried and got, as lines for stderr. The request
 * (marked when it is the retry of a challenged one), its access token's decoded header and
 * claims and its DPoP proof's (signatures elided: a trace is read, never replayed), and the
 * answer with its `WWW-Authenticate` challenge and the server's reason. Every value is escaped
 * and bounded ({@link safeText}).
 *
 * @example
 * ```ts
 * recordingFetch(origin, (e) => traceLines(e, { retry: false }).forEach((l) => io.err(l)))
 * ```
 */
export function traceLines(exchange: Exchange, options: { readonly retry: boolean }): string[] {
  const { request } = exchange
  const show = (value: unknown) => safeText(value, { max: TRACE_MAX })
  const call = [exchange.rpcMethod, exchange.tool].filter((v) => v !== undefined).join(' ')
  const lines = [
    `→ ${show(request.method)} ${show(request.url)}${call === '' ? '' : `  ${show(call)}`}${options.retry ? '  (the retry, after the challenge above)' : ''}`,
  ]
  const credentials = decodeCredentials(request.headers)
  const decoded = (label: string, jwt: DecodedJwt | undefined) => {
    if (jwt === undefined) return [`    ${label}: none`]
    if ('error' in jwt) return [`    ${label}: ${show(jwt.error)}`]
    return [
      `    ${label} header ${show(jwt.header)}`,
      `    ${' '.repeat(label.length)} claims ${show(jwt.claims)}  (signature elided)`,
    ]
  }
  lines.push(
    ...decoded(
      `access token${credentials.scheme === undefined ? '' : ` (${show(credentials.scheme)})`}`,
      credentials.token,
    ),
    ...decoded('DPoP proof', credentials.proof),
  )
  lines.push(`← ${exchange.status}`)
  if (exchange.challengeHeader !== undefined) {
    lines.push(`    WWW-Authenticate: ${show(exchange.challengeHeader)}`)
  }
  const answer = exchange.answer
  if (answer !== undefined && exchange.status >= 400) {
    const code = answer.code === undefined ? '' : `${show(answer.code)}: `
    if (answer.description !== undefined || answer.code !== undefined) {
      lines.push(`    ${code}${show(answer.description ?? '')}`)
    }
  }
  return lines
}

/**
 * Tells a retry from a first attempt: a request whose method, URL and body are those of a
 * request that was just challenged (401/403) is its retry.
 */
export function retryTracker(): (exchange: Exchange) => boolean {
  const challenged = new Set<string>()
  return (exchange) => {
    const key = `${exchange.request.method} ${exchange.request.url} ${exchange.request.body ?? ''}`
    const retry = challenged.delete(key)
    if (exchange.status === 401 || exchange.status === 403) challenged.add(key)
    return retry
  }
}
