/**
 * Requests the SDK servers send to clients (sampling, elicitation, roots), held under ids of
 * callproof's own until the caller and session they were sent to answer them, once. Another
 * caller's answer, a guessed id or a replayed answer goes nowhere. Part of the SDK v1 seam
 * (`v1.ts`, rule 5), and of the SDK v2 seam on 2025-11-25 (`v2.ts`).
 *
 * @module
 */
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js'

/**
 * The transport a server request left on, which its answer is handed to: the v1 SDK's, or the v2
 * SDK's (sdk/v2.ts, on 2025-11-25), both of which take an incoming message through `onmessage`.
 */
export interface AnsweredTransport {
  onmessage?: ((message: JSONRPCMessage) => void) | undefined
}

/** Who a server request was sent to. */
export interface Asker {
  /** The caller's subject, client and key. */
  readonly owner: string
  readonly sessionId: string | null
}

/** Server requests awaiting their answer at most this long (then forgotten: the answer is 404). */
const SERVER_REQUEST_TTL_MS = 10 * 60_000
/** Server requests awaiting an answer, at most (the oldest is forgotten first). */
const MAX_SERVER_REQUESTS = 10_000

/**
 * Requests our SDK servers sent to clients, under ids of our own, until they are answered
 * (rule 5).
 */
export class ServerRequests {
  readonly #pending = new Map<
    string,
    {
      readonly asker: Asker
      readonly originalId: string | number
      readonly transport: AnsweredTransport
      readonly expiresAt: number
    }
  >()

  /** `message` as it leaves: a request gets a fresh id, remembered with who it is sent to. */
  outgoing(message: JSONRPCMessage, asker: Asker, transport: AnsweredTransport): JSONRPCMessage {
    if (!('method' in message) || !('id' in message)) return message
    const now = Date.now()
    for (const [id, entry] of this.#pending) {
      if (entry.expiresAt > now && this.#pending.size < MAX_SERVER_REQUESTS) break
      this.#pending.delete(id)
    }
    const id = `callproof-${crypto.randomUUID()}`
    this.#pending.set(id, {
      asker,
      originalId: message.id,
      transport,
      expiresAt: now + SERVER_REQUEST_TTL_MS,
    })
    return { ...message, id }
  }

  /** Whether `message` answers a request sent to `from` and not yet answered. */
  admits(message: { id: string | number }, from: Asker): boolean {
    return this.#entry(message, from) !== undefined
  }

  /** Delivers an answer to the server that asked; one that is not the asker's goes nowhere. */
  deliver(message: { id: string | number }, from: Asker): void {
    const entry = this.#entry(message, from)
    if (entry === undefined) return
    // Once: a second answer (a replay under a new proof) finds nothing.
    this.#pending.delete(message.id as string)
    entry.transport.onmessage?.({ ...message, id: entry.originalId } as JSONRPCMessage)
  }

  #entry(message: { id: string | number }, from: Asker) {
    const id = message.id
    const entry = typeof id === 'string' ? this.#pending.get(id) : undefined
    if (
      entry === undefined ||
      entry.expiresAt <= Date.now() ||
      entry.asker.owner !== from.owner ||
      entry.asker.sessionId !== from.sessionId
    ) {
      return undefined
    }
    return entry
  }

  /** Forgets the requests of a transport that closed (their answers could go nowhere). */
  forget(transport: AnsweredTransport): void {
    for (const [id, entry] of this.#pending)
      if (entry.transport === transport) this.#pending.delete(id)
  }
}
