/**
 * What the request pipeline asks of an MCP SDK: run one verified message and answer it.
 *
 * The pipeline decides who is calling and whether the call may run; a seam only executes. One
 * seam per SDK line keeps the SDK's types and quirks out of the pipeline (`v1.ts` for
 * `@modelcontextprotocol/sdk` 1.x, `v2.ts` for `@modelcontextprotocol/server` 2.x).
 *
 * @module
 */
import type { Caller, CallproofError, VerifiedCall } from '@callproof/core'
import type { RequestHeaders } from '../node.js'

/** One verified request, ready to run. */
export interface McpExecution {
  /** The HTTP request (its body was already read: the SDK runs `call.message`). */
  readonly request: Request
  /**
   * Its headers: read them here rather than from `request.headers` (under some server adapters,
   * `request.headers` is a second, costlier copy).
   */
  readonly headers: RequestHeaders
  /** The verified call: caller, token, proof, binding and the one parsed message. */
  readonly call: VerifiedCall
  /** The access token the request carried (handed to tools in `authInfo.token`). */
  readonly accessToken: string
  /** The time of the decision, milliseconds since the epoch (listing's step-up hints use it). */
  readonly now: number
}

/**
 * A complete answer a seam built itself (JSON, or no body): the pipeline adds its own headers and
 * makes the one `Response`, instead of copying one the seam made (a copy reads the body again).
 */
export interface McpAnswer {
  readonly status: number
  /** The JSON text, or `null` for no body. */
  readonly body: string | null
  readonly headers: Readonly<Record<string, string>>
}

/** An MCP SDK behind the pipeline. */
export interface McpSeam {
  /**
   * What the SDK's transport would refuse of this POST and its parsed message before running it
   * (`Accept`, `Content-Type`, protocol version), as a `CallproofError`, or `undefined`. The pipeline asks
   * before anything is spent on the request, so that a one-time approval is never consumed, nor
   * an `allowed` event written, for a call the transport then refuses. `call` is the verified
   * call (the v2 seam compares the `Mcp-Method`/`Mcp-Name` headers with its binding and opens
   * Multi Round-Trip continuations for its caller).
   */
  refusal(
    request: Request,
    headers: RequestHeaders,
    message: unknown,
    call?: VerifiedCall,
  ): CallproofError | undefined | Promise<CallproofError | undefined>
  /**
   * Whether this POST is served without a session whatever the server's session options say
   * (MCP 2026-07-28 requests are stateless: they never carry `Mcp-Session-Id`). Absent: never.
   */
  sessionless?(request: Request, message: unknown): boolean
  /** Runs the verified message and returns the SDK's HTTP answer (or a complete answer). */
  execute(execution: McpExecution): Promise<Response | McpAnswer>
  /**
   * Whether `answer`, a JSON-RPC response, answers a request this seam sent to `caller` on
   * `sessionId` and not yet answered. The pipeline's policy step asks before anything runs (for
   * the audit); `execute` checks again when it delivers, so that an answer is delivered once.
   * An answer that is not admitted is accepted (202, as MCP answers any response POST) and
   * delivered nowhere.
   */
  admitAnswer(answer: { id: string | number }, caller: Caller, sessionId: string | null): boolean
  /**
   * The standalone SSE stream of `caller`'s own session `sessionId` (the pipeline has checked
   * that the session is the caller's): server notifications that belong to no request, such as
   * resource updates, travel on it. `lastEventId` resumes it after the last event the client saw.
   * It closes when `acceptedUntil` (ms) passes: it must not outlive the token that opened it.
   */
  openStream(
    caller: Caller,
    sessionId: string,
    lastEventId: string | null,
    acceptedUntil: number,
  ): Response
  /** Forgets what this seam keeps for `caller`'s session `sessionId`, which was just ended. */
  endSession(caller: Caller, sessionId: string): void
}
