/**
 * A transport of our own between the pipeline and one pooled SDK server, for JSON answers: it
 * hands the server the one verified message and returns the server's answer, nothing else.
 *
 * **Why not the SDK's Streamable HTTP transport here.** The pipeline has already done what that
 * transport does before it runs a message (read and parse the body once, check `Accept`,
 * `Content-Type` and the protocol version: `transportRefusal`), so a transport per request
 * repeats it — a second parse of the message with the SDK's schema, a copy of every header, a
 * connect and a close (with its `Connection closed` error) — for nothing. A server keeps its
 * direct transport for its whole life and serves one message at a time through it.
 *
 * What it delivers, and to whom:
 * - the answer (result or error) whose id is the running request's: to that request only;
 * - nothing else. A JSON answer has no stream: like the SDK's own JSON mode, notifications of
 *   the request (progress, log) are dropped; a request to the client (sampling, elicitation,
 *   roots) fails at once with an error that says why, instead of waiting for an answer that
 *   cannot come (a tool that asks the client something needs `jsonResponse: false`).
 *
 * @module
 */
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js'
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js'
import type { JSONRPCMessage, MessageExtraInfo } from '@modelcontextprotocol/sdk/types.js'
import type { RequestHeaders } from '../node.js'

/** What a server answered, or why it will not answer. */
export type DirectOutcome =
  { readonly kind: 'answer'; readonly message: JSONRPCMessage } | { readonly kind: 'cancelled' }

/**
 * What a transport hands the SDK with a message: the verified caller's `authInfo`, and the
 * request as the SDK line expects it (v1: `requestInfo`; v2: the `Request` itself).
 */
export type TransportExtra =
  MessageExtraInfo | { readonly authInfo: AuthInfo; readonly request: Request }

/** The request a direct transport is running. */
interface Running {
  readonly id: string | number
  readonly settle: (outcome: DirectOutcome) => void
}

/** The SDK's `requestInfo`, with the copy of the headers made only if a handler reads it. */
export function lazyRequestInfo(
  url: string,
  headers: RequestHeaders,
): NonNullable<MessageExtraInfo['requestInfo']> {
  let copy: Record<string, string> | undefined
  let parsed: URL | undefined
  return {
    get headers() {
      copy ??= Object.fromEntries(headers.entries())
      return copy
    },
    get url() {
      parsed ??= new URL(url)
      return parsed
    },
  }
}

/** One pooled server's transport (see the module comment). */
export class DirectTransport implements Transport {
  onclose?: () => void
  onerror?: (error: Error) => void
  onmessage?: (message: JSONRPCMessage, extra?: TransportExtra) => void
  #running: Running | undefined

  async start(): Promise<void> {}

  async close(): Promise<void> {
    this.#settle({ kind: 'cancelled' })
    this.onclose?.()
  }

  /** Whether the server is running the request `id` now. */
  isRunning(id: string | number): boolean {
    return this.#running?.id === id
  }

  /**
   * Runs one request and resolves with the server's answer to it. One at a time: the pool
   * hands a server to one request, and takes it back only once the request is answered.
   */
  run(
    message: JSONRPCMessage & { id: string | number },
    extra: TransportExtra,
  ): Promise<DirectOutcome> {
    if (this.#running !== undefined) throw new Error('a pooled MCP server got a second request')
    return new Promise<DirectOutcome>((resolve) => {
      this.#running = { id: message.id, settle: resolve }
      this.onmessage?.(message, extra)
    })
  }

  /** Delivers a notification (it has no answer). */
  notify(message: JSONRPCMessage, extra: TransportExtra): void {
    this.onmessage?.(message, extra)
  }

  /**
   * Delivers a `notifications/cancelled` for the running request: the SDK then sends no answer,
   * so the request is settled as cancelled here.
   */
  cancel(message: JSONRPCMessage): void {
    this.onmessage?.(message)
    this.#settle({ kind: 'cancelled' })
  }

  async send(message: JSONRPCMessage): Promise<void> {
    const running = this.#running
    if ('id' in message && !('method' in message)) {
      // An answer: only the running request's is delivered (a late one of an earlier request
      // on this server would name an id that is not running, or not its own caller's).
      if (running !== undefined && message.id === running.id) {
        this.#settle({ kind: 'answer', message })
      }
      return
    }
    if ('method' in message && 'id' in message) {
      throw new Error(
        `${message.method} needs a stream to reach the client: this server answers with JSON (serve it with jsonResponse: false)`,
      )
    }
    // A notification of the request: a JSON answer has nowhere to carry it (as the SDK's JSON mode).
  }

  #settle(outcome: DirectOutcome): void {
    const running = this.#running
    this.#running = undefined
    running?.settle(outcome)
  }
}
