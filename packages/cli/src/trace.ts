/**
 * What happens on the wire between a client and an MCP server, recorded for the demo's story and
 * shown live by `callproof call`: each exchange's status and challenge, and why the client went
 * back to the authorization server.
 */
import type { InteractionContext } from '@callproof/client'
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
