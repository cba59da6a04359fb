/**
 * The bridge's message pump: every JSON-RPC message from the local MCP client (stdio, or one
 * loopback HTTP session) goes to the callproof server unchanged, and every message from the
 * server (responses, its own requests such as elicitation or sampling, notifications) comes back
 * unchanged. Ids are never rewritten, so a response reaches the request it answers and a
 * `notifications/cancelled` names the request it cancels on both sides.
 *
 * What the server side cannot deliver becomes a JSON-RPC error for the request that was lost,
 * never a crash and never silence: a refused authorization, an unreachable server, an HTTP error.
 */
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js'
import type { JSONRPCMessage, JSONRPCRequest, RequestId } from '@modelcontextprotocol/sdk/types.js'
import { CallproofClientError, ChallengeError } from '@callproof/client'
import { safeText } from '../terminal.js'

/** JSON-RPC error code the bridge answers with when it could not deliver a request (§5.1: server error range). */
export const BRIDGE_ERROR = -32000

/** The most characters of an error message sent back to the client. */
const MESSAGE_MAX = 1000

/** What the pump tells its owner: one line per event, already escaped and bounded. */
export interface PumpEvents {
  /** A line for stderr (a refusal, an error of either side). */
  note(line: string): void
  /** The server's `initialize` result came back: its protocol version applies from now on. */
  initialized?(protocolVersion: string): void
}

/** Options of {@link pump}. */
export interface PumpOptions {
  /**
   * Which local request a server message relates to, for transports that route by request
   * (Streamable HTTP: a server request during a tool call travels on that call's stream).
   */
  readonly routeToRequest?: boolean
}

/** A running pump: closing it closes both transports. */
export interface Pump {
  close(): Promise<void>
  /** Settles when either side closed. */
  readonly closed: Promise<void>
}

function isRequest(message: JSONRPCMessage): message is JSONRPCRequest {
  return 'method' in message && 'id' in message && message.id !== undefined
}

function isResponse(message: JSONRPCMessage): message is JSONRPCMessage & { id: RequestId } {
  return !('method' in message) && 'id' in message
}

/**
 * Why a request could not be delivered, in one line: callproof's own errors carry their code (the
 * client can tell a refusal from an outage), anything else its message.
 */
export function deliveryError(error: unknown): { message: string; data?: { code: string } } {
  if (error instanceof ChallengeError || error instanceof CallproofClientError) {
    return {
      message: `callproof bridge: ${safeText(error.message, { max: MESSAGE_MAX })}`,
      data: { code: error.code },
    }
  }
  const text = error instanceof Error ? error.message : String(error)
  const cause = (error as { cause?: { code?: unknown } } | undefined)?.cause
  const unreachable = cause?.code === 'ECONNREFUSED' || /fetch failed|ECONNREFUSED/.test(text)
  return {
    message: `callproof bridge: ${unreachable ? 'cannot reach the callproof server' : safeText(text, { max: MESSAGE_MAX })}`,
  }
}

/**
 * Connects `local` (the MCP client's side) to `remote` (the callproof server, through a
 * signing transport) and starts both.
 */
export async function pump(
  local: Transport,
  remote: Transport,
  events: PumpEvents,
  options: PumpOptions = {},
): Promise<Pump> {
  // Local requests the server has not answered yet, by id, with their progress token: a lost
  // one is answered with an error when the server side goes away.
  const pending = new Map<RequestId, { progressToken?: unknown }>()
  let initializeId: RequestId | undefined
  let closing = false
  let settle: () => void = () => undefined
  const closed = new Promise<void>((resolve) => (settle = resolve))

  const answer = (id: RequestId, error: unknown) => {
    if (!pending.delete(id)) return
    const { message, data } = deliveryError(error)
    void local
      .send({
        jsonrpc: '2.0',
        id,
        error: { code: BRIDGE_ERROR, message, ...(data === undefined ? {} : { data }) },
      })
      .catch(() => undefined)
  }

  local.onmessage = (message) => {
    if (isRequest(message)) {
      const meta = (message.params as { _meta?: { progressToken?: unknown } } | undefined)?._meta
      pending.set(
        message.id,
        meta?.progressToken === undefined ? {} : { progressToken: meta.progressToken },
      )
      if (message.method === 'initialize') initializeId = message.id
    } else if ('method' in message && message.method === 'notifications/cancelled') {
      // The client gave up on that request: no answer is owed for it any more.
      const id = (message.params as { requestId?: RequestId } | undefined)?.requestId
      if (id !== undefined) pending.delete(id)
    }
    // Not awaited: a call waiting for a sign-in or an approval must not hold up the others.
    // The transport has reported the error through onerror already (one line on stderr).
    remote.send(message).catch((error: unknown) => {
      if (isRequest(message)) answer(message.id, error)
    })
  }

  remote.onmessage = (message) => {
    if (isResponse(message)) {
      pending.delete(message.id)
      if (message.id === initializeId && 'result' in message) {
        const version = (message.result as { protocolVersion?: unknown }).protocolVersion
        // The server's version, in the MCP-Protocol-Version header of every later request.
        if (typeof version === 'string') {
          remote.setProtocolVersion?.(version)
          events.initialized?.(version)
        }
      }
    }
    const relatedRequestId = options.routeToRequest === true ? related(message) : undefined
    void local
      .send(message, relatedRequestId === undefined ? undefined : { relatedRequestId })
      .catch((error: unknown) => events.note(deliveryError(error).message))
  }

  /** The local request a server message belongs with: its progress token's, else the latest. */
  const related = (message: JSONRPCMessage): RequestId | undefined => {
    if (isResponse(message)) return undefined
    const token = (message as { params?: { progressToken?: unknown } }).params?.progressToken
    let latest: RequestId | undefined
    for (const [id, request] of pending) {
      if (token !== undefined && request.progressToken === token) return id
      latest = id
    }
    return latest
  }

  const close = async () => {
    if (closing) return
    closing = true
    if (pending.size > 0)
      events.note(`callproof bridge: ${pending.size} request(s) left unanswered`)
    for (const id of [...pending.keys()]) {
      answer(id, new Error('the connection to the server closed'))
    }
    await remote.close().catch(() => undefined)
    await local.close().catch(() => undefined)
    settle()
  }
  local.onclose = () => void close()
  remote.onclose = () => void close()
  local.onerror = (error) => events.note(`local client: ${safeText(error.message, { max: 300 })}`)
  // Every failed send is reported here (and answered where send() failed), and so are the
  // streams the SDK reopens by itself.
  remote.onerror = (error) => {
    // Closing aborts the streams still open: that is no error to report.
    if (!closing) events.note(deliveryError(error).message)
  }

  await remote.start()
  await local.start()
  return { close, closed }
}
