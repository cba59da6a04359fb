/**
 * Sessions: an `Mcp-Session-Id` bound to the caller that created it.
 *
 * Design choice (multi-instance): callproof, not the MCP SDK, issues session ids and records their
 * owner in a {@link SessionStore}. The SDK transport runs per request in its stateless mode, so no
 * request depends on in-process session state: a session created on instance A can be used on
 * instance B as long as both share the store (the Redis adapter in `@callproof/server/redis`).
 * The price is that server-to-client requests (sampling, elicitation) can only travel on the
 * response stream of the request that caused them, and there is no standalone GET stream.
 *
 * A session is never authentication: every request still carries its own token and proof. The
 * session only stops one caller from steering requests into another caller's session.
 *
 * @module
 */

/** Who a session belongs to: the subject, the client and the key, never one particular token. */
export interface SessionOwner {
  /** The token's `sub`. */
  readonly sub: string
  /** The token's `client_id`. */
  readonly clientId: string
  /** The RFC 7638 thumbprint of the proof key (`cnf.jkt`). */
  readonly jkt: string
}

/**
 * Where session ownership lives. Implementations must be shared by every instance that serves the
 * same resource (memory for one process, Redis for several).
 *
 * @example
 * ```ts
 * const sessions: SessionStore = new MemorySessionStore()
 * await sessions.create(id, { sub: 'alice', clientId: 'cli', jkt }, 3600)
 * const owner = await sessions.owner(id) // undefined once expired or deleted
 * ```
 */
export interface SessionStore {
  /** Records a new session and its owner for `ttlSeconds`. Throws when it cannot record it. */
  create(id: string, owner: SessionOwner, ttlSeconds: number): Promise<void>
  /** The owner of a live session, or `undefined` when it does not exist (or has expired). */
  owner(id: string): Promise<SessionOwner | undefined>
  /** Ends a session. Deleting an unknown session is not an error. */
  delete(id: string): Promise<void>
}

/** Options of {@link MemorySessionStore}. */
export interface MemorySessionStoreOptions {
  /** At most this many live sessions; creating one more fails (default 10 000). */
  maxSessions?: number
  /** Milliseconds since the epoch (default `Date.now`). */
  clock?: () => number
}

/**
 * A bounded in-process {@link SessionStore} for a single instance.
 *
 * @example
 * ```ts
 * createCallproof({ ..., sessions: { mode: 'stateful', store: new MemorySessionStore() } })
 * ```
 */
export class MemorySessionStore implements SessionStore {
  readonly #entries = new Map<string, { owner: SessionOwner; expiresAt: number }>()
  readonly #max: number
  readonly #clock: () => number

  constructor(options: MemorySessionStoreOptions = {}) {
    const max = options.maxSessions ?? 10_000
    if (!Number.isSafeInteger(max) || max < 1) {
      throw new TypeError(`maxSessions must be a positive integer, got ${String(max)}`)
    }
    this.#max = max
    this.#clock = options.clock ?? Date.now
  }

  create(id: string, owner: SessionOwner, ttlSeconds: number): Promise<void> {
    const now = this.#clock()
    if (this.#entries.size >= this.#max) this.#sweep(now)
    // Refusing beats evicting: evicting a live session would let a flood of new sessions end
    // other callers' sessions.
    if (this.#entries.size >= this.#max) {
      return Promise.reject(new Error(`session store is full (${this.#max} live sessions)`))
    }
    this.#entries.set(id, {
      owner: { sub: owner.sub, clientId: owner.clientId, jkt: owner.jkt },
      expiresAt: now + ttlSeconds * 1000,
    })
    return Promise.resolve()
  }

  owner(id: string): Promise<SessionOwner | undefined> {
    const entry = this.#entries.get(id)
    if (entry === undefined) return Promise.resolve(undefined)
    if (entry.expiresAt <= this.#clock()) {
      this.#entries.delete(id)
      return Promise.resolve(undefined)
    }
    return Promise.resolve(entry.owner)
  }

  delete(id: string): Promise<void> {
    this.#entries.delete(id)
    return Promise.resolve()
  }

  #sweep(now: number): void {
    for (const [id, entry] of this.#entries) {
      if (entry.expiresAt <= now) this.#entries.delete(id)
    }
  }
}

/**
 * True when two owners are the same caller: same subject, same client, same key. All three count,
 * so a stolen session id is useless to another user, to another client of the same user, and to
 * the same client running with a different key.
 *
 * @example
 * ```ts
 * if (!sameOwner(await store.owner(id), caller)) throw notFound()
 * ```
 */
export function sameOwner(a: SessionOwner, b: SessionOwner): boolean {
  return a.sub === b.sub && a.clientId === b.clientId && a.jkt === b.jkt
}

/** A new unguessable session id: 32 random bytes, base64url (visible ASCII, as MCP requires). *
 * @example
 * ```ts
 * response.headers.set('mcp-session-id', newSessionId())
 * ```
 */
export function newSessionId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32))
  return Buffer.from(bytes).toString('base64url')
}
