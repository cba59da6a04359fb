/**
 * The pool of SDK servers both seams reuse for JSON answers (v1.ts rules 1–4, and v2.ts on the
 * 2025-11-25 leg): a server serves one request at a time on a transport of callproof's own
 * (direct.ts), goes back to the pool as soon as its answer is out, and is dropped when the
 * registrations change. A cancelled request sends no answer and its handler may still run: its
 * server is closed, never returned.
 *
 * @module
 */
import { DirectTransport } from './direct.js'
import type { TransportExtra } from './direct.js'
import type { McpAnswer } from './seam.js'

/** What the pool needs of an SDK server (either line's `McpServer`). */
export interface PooledServer {
  connect(transport: never): Promise<void>
  close(): Promise<void>
}

/** Options of {@link createServerPool}. */
export interface ServerPoolOptions<S extends PooledServer> {
  /** A new server with every registration, whose listings answer for the request's caller. */
  readonly build: () => S
  /** The registrations' version: a change drops the pool (servers hold the old ones). */
  readonly version: () => number
  /** Called when the registrations changed, before any server is built for the new ones. */
  readonly onRefresh?: () => void
  /** Idle servers kept (default 64: more than the requests in flight on one core). */
  readonly maxIdle?: number
}

/** How a running request can be cancelled, for as long as it runs (its own caller's only). */
export type CancelTracker = (cancel: (cancellation: unknown) => void) => () => void

/** A pool of servers (see the module comment). */
export interface ServerPool {
  /** Drops the pool if the registrations changed since it was filled. */
  refresh(): void
  /**
   * Runs one message on a pooled server and answers with JSON: 200 with the answer to a
   * request, 202 for a notification or a cancelled request. `track` registers the running
   * request's cancel function and returns its unregistration.
   */
  run(message: unknown, extra: TransportExtra, track?: CancelTracker): Promise<McpAnswer>
}

/** The answer to a notification or a response: accepted, nothing to say (MCP Streamable HTTP). */
export const ACCEPTED: McpAnswer = Object.freeze({
  status: 202,
  body: null,
  headers: Object.freeze({}),
})

/**
 * A pool of `build()`'s servers.
 *
 * @example
 * ```ts
 * const pool = createServerPool({ build, version: () => registrations.version })
 * const answer = await pool.run(message, { authInfo, requestInfo })
 * ```
 */
export function createServerPool<S extends PooledServer>(
  options: ServerPoolOptions<S>,
): ServerPool {
  const maxIdle = options.maxIdle ?? 64
  let idle: Array<{ server: S; transport: DirectTransport }> = []
  let builtFor = -1

  function refresh(): void {
    const version = options.version()
    if (builtFor === version) return
    builtFor = version
    idle = []
    options.onRefresh?.()
  }

  async function acquire(): Promise<{ server: S; transport: DirectTransport }> {
    refresh()
    const found = idle.pop()
    if (found !== undefined) return found
    const pooled = { server: options.build(), transport: new DirectTransport() }
    await pooled.server.connect(pooled.transport as never)
    return pooled
  }

  /** Takes back a server whose request is answered (not one built for older registrations). */
  function release(pooled: { server: S; transport: DirectTransport }, version: number): void {
    if (version === options.version() && idle.length < maxIdle) idle.push(pooled)
  }

  return {
    refresh,
    async run(message, extra, track) {
      const version = options.version()
      const pooled = await acquire()
      const id = (message as { id?: unknown } | undefined)?.id
      if (typeof id !== 'string' && typeof id !== 'number') {
        pooled.transport.notify(message as never, extra)
        release(pooled, version)
        return ACCEPTED
      }
      const untrack = track?.((cancellation) => {
        if (pooled.transport.isRunning(id)) pooled.transport.cancel(cancellation as never)
      })
      let outcome
      try {
        outcome = await pooled.transport.run(message as never, extra)
      } finally {
        untrack?.()
      }
      if (outcome.kind === 'cancelled') {
        await pooled.server.close().catch(() => undefined)
        return ACCEPTED
      }
      release(pooled, version)
      return {
        status: 200,
        body: JSON.stringify(outcome.message),
        headers: { 'content-type': 'application/json' },
      }
    },
  }
}
