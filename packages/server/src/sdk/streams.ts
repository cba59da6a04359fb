/**
 * The standalone SSE stream of each caller session, with `Last-Event-ID` replay, and resource
 * subscriptions kept per caller session. Part of the SDK v1 seam (`v1.ts`, rule 6).
 *
 * @module
 */
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js'

/** Sessions with a stream or replayable events, at most (the oldest is forgotten first). */
const MAX_STREAMS = 10_000
/** Events kept per session for `Last-Event-ID` resumption. */
const REPLAYED_EVENTS = 100

/**
 * The standalone SSE streams (rule 6): one per caller session, each event numbered, the last
 * {@link REPLAYED_EVENTS} kept so that a GET with `Last-Event-ID` resumes after what the client
 * saw. In this process's memory: with several instances, a session's stream and its replay live
 * on the instance that serves its GET (docs/protocol.md §15.2).
 */
export class Streams {
  readonly #sessions = new Map<
    string,
    {
      next: number
      events: { id: number; data: string }[]
      live?: ReadableStreamDefaultController<Uint8Array>
      timer?: ReturnType<typeof setTimeout>
    }
  >()

  readonly #encoder = new TextEncoder()

  open(sessionKey: string, lastEventId: string | null, acceptedUntil: number): Response {
    const session = this.#session(sessionKey)
    // One stream per session: a new GET replaces the old one (a reconnecting client).
    this.#end(session)
    const after = lastEventId !== null && /^\d{1,15}$/.test(lastEventId) ? Number(lastEventId) : -1
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        session.live = controller
        for (const event of session.events) {
          if (event.id > after) controller.enqueue(this.#frame(event))
        }
        // A stream must not outlive the token that opened it: every request proves its caller.
        session.timer = setTimeout(
          () => this.#end(session),
          Math.max(0, Math.min(acceptedUntil - Date.now(), 2 ** 31 - 1)),
        )
      },
      cancel: () => {
        if (session.live !== undefined) this.#end(session, false)
      },
    })
    return new Response(body, {
      status: 200,
      headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' },
    })
  }

  /** Closes the session's stream and drops its events. */
  forget(sessionKey: string): void {
    const session = this.#sessions.get(sessionKey)
    if (session === undefined) return
    this.#end(session)
    this.#sessions.delete(sessionKey)
  }

  /** Sends `message` on the session's stream, or keeps it for the next GET to replay. */
  send(sessionKey: string, message: JSONRPCMessage): void {
    const session = this.#session(sessionKey)
    const event = { id: session.next++, data: JSON.stringify(message) }
    session.events.push(event)
    if (session.events.length > REPLAYED_EVENTS) session.events.shift()
    try {
      session.live?.enqueue(this.#frame(event))
    } catch {
      this.#end(session, false)
    }
  }

  #session(sessionKey: string) {
    let session = this.#sessions.get(sessionKey)
    if (session === undefined) {
      session = { next: 0, events: [] }
      this.#sessions.set(sessionKey, session)
      if (this.#sessions.size > MAX_STREAMS) {
        const [oldest, entry] = this.#sessions.entries().next().value!
        this.#end(entry)
        this.#sessions.delete(oldest)
      }
    }
    return session
  }

  #end(
    session: {
      live?: ReadableStreamDefaultController<Uint8Array>
      timer?: ReturnType<typeof setTimeout>
    },
    close = true,
  ): void {
    clearTimeout(session.timer)
    const live = session.live
    delete session.live
    if (close) {
      try {
        live?.close()
      } catch {
        // Already closed by the client.
      }
    }
  }

  #frame(event: { id: number; data: string }): Uint8Array {
    return this.#encoder.encode(`id: ${event.id}\nevent: message\ndata: ${event.data}\n\n`)
  }
}

/** Subscriptions kept, at most (the oldest is forgotten first). */
const MAX_SUBSCRIPTIONS = 100_000

/** Who subscribed to which resource: caller sessions by URI, each until its token expires. */
export class Subscriptions {
  readonly #byUri = new Map<string, Map<string, number>>()
  #count = 0

  add(uri: string, sessionKey: string, until: number): void {
    let subscribers = this.#byUri.get(uri)
    if (subscribers === undefined) {
      subscribers = new Map()
      this.#byUri.set(uri, subscribers)
    }
    if (!subscribers.has(sessionKey)) this.#count++
    subscribers.set(sessionKey, until)
    if (this.#count > MAX_SUBSCRIPTIONS) {
      const [oldestUri, oldest] = this.#byUri.entries().next().value!
      const [first] = oldest.keys()
      this.remove(oldestUri, first!)
    }
  }

  remove(uri: string, sessionKey: string): void {
    const subscribers = this.#byUri.get(uri)
    if (subscribers?.delete(sessionKey) === true) this.#count--
    if (subscribers?.size === 0) this.#byUri.delete(uri)
  }

  /** Drops every subscription of a session. */
  forget(sessionKey: string): void {
    for (const [uri, subscribers] of [...this.#byUri]) {
      if (subscribers.has(sessionKey)) this.remove(uri, sessionKey)
    }
  }

  /** The sessions subscribed to `uri` now; expired subscriptions are dropped. */
  of(uri: string, now: number): string[] {
    const subscribers = this.#byUri.get(uri)
    if (subscribers === undefined) return []
    const live: string[] = []
    for (const [sessionKey, until] of [...subscribers]) {
      if (until > now) live.push(sessionKey)
      else this.remove(uri, sessionKey)
    }
    return live
  }
}
