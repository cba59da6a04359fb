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

import { CallproofError, QuotaExceededError } from '@callproof/core'

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
  /**
   * Records a new session and its owner for at most `ttlSeconds` (its lifetime; a store may end
   * it earlier when idle). Throws {@link QuotaExceededError} (429) when this caller holds its
   * quota of sessions, anything else when it cannot record it.
   */
  create(id: string, owner: SessionOwner, ttlSeconds: number): Promise<void>
  /**
   * The owner of a live session, or `undefined` when it does not exist (or has expired). A
   * look-up is a use: it renews the session's idle time.
   */
  owner(id: string): Promise<SessionOwner | undefined>
  /** Ends a session. Deleting an unknown session is not an error. */
  delete(id: string): Promise<void>
}

/** Options of {@link MemorySessionStore}; docs/operations.md says how to size them. */
export interface MemorySessionStoreOptions {
  /**
   * At most this many live sessions in total (default 10 000). When it is reached, a new session
   * evicts the least recently used session of the subject holding the most sessions; a caller
   * that itself holds the most is refused instead (429). Nobody is locked out by a full store.
   */
  maxSessions?: number
  /**
   * At most this many live sessions of one subject (`sub`), over all its clients (default 256).
   * One more is refused (ERR_QUOTA_EXCEEDED, 429 with `Retry-After`), for that subject only.
   */
  maxSessionsPerSubject?: number
  /**
   * At most this many live sessions of one client (`client_id`), over all its subjects (default:
   * no separate limit, only the total: every user of a public client shares its client id, and
   * refusing there would lock them all out). Set it when clients register dynamically.
   */
  maxSessionsPerClient?: number
  /**
   * A session not used for this many seconds ends (default 1 800, 30 min), within its lifetime
   * (the `ttlSeconds` of `create`, 8 h by default in the server options). Every use renews it.
   */
  idleSeconds?: number
  /** Milliseconds since the epoch (default `Date.now`). */
  clock?: () => number
}

/**
 * The defaults of {@link MemorySessionStoreOptions}; the Redis session store shares the
 * per-subject and idle ones.
 */
export const SESSION_DEFAULTS = Object.freeze({
  maxSessions: 10_000,
  maxSessionsPerSubject: 256,
  idleSeconds: 1_800,
})

interface SessionEntry {
  readonly owner: SessionOwner
  /** End of the lifetime (ms): never renewed. */
  readonly end: number
  /** End of the idle time (ms), renewed on use, never past `end`. */
  deadline: number
}

/**
 * A bounded in-process {@link SessionStore} for a single instance: capped per subject, per client
 * and in total, with idle expiry. A full store evicts a session (least recently used, of the
 * subject holding the most) rather than refusing everyone: a session is never authentication,
 * so an evicted one only makes its owner initialize again.
 *
 * @example
 * ```ts
 * createCallproof({ ..., sessions: { mode: 'stateful', store: new MemorySessionStore() } })
 * ```
 */
export class MemorySessionStore implements SessionStore {
  /** Every session, least recently used first (a use moves it to the end). */
  readonly #entries = new Map<string, SessionEntry>()
  /** Each subject's and each client's sessions, least recently used first. */
  readonly #bySubject = new Map<string, Set<string>>()
  readonly #byClient = new Map<string, Set<string>>()
  readonly #max: number
  readonly #maxPerSubject: number
  readonly #maxPerClient: number
  readonly #idleMs: number
  readonly #clock: () => number
  #lastFullSweep = Number.NEGATIVE_INFINITY

  constructor(options: MemorySessionStoreOptions = {}) {
    this.#max = positive('maxSessions', options.maxSessions, SESSION_DEFAULTS.maxSessions)
    this.#maxPerSubject = positive(
      'maxSessionsPerSubject',
      options.maxSessionsPerSubject,
      SESSION_DEFAULTS.maxSessionsPerSubject,
    )
    // No separate client limit by default (the total still bounds every client).
    this.#maxPerClient =
      options.maxSessionsPerClient === undefined
        ? Number.POSITIVE_INFINITY
        : positive('maxSessionsPerClient', options.maxSessionsPerClient, 1)
    this.#idleMs = positive('idleSeconds', options.idleSeconds, SESSION_DEFAULTS.idleSeconds) * 1000
    this.#clock = options.clock ?? Date.now
  }

  create(id: string, owner: SessionOwner, ttlSeconds: number): Promise<void> {
    try {
      this.#create(id, owner, ttlSeconds)
      return Promise.resolve()
    } catch (error) {
      return Promise.reject(error as Error)
    }
  }

  owner(id: string): Promise<SessionOwner | undefined> {
    const entry = this.#entries.get(id)
    if (entry === undefined) return Promise.resolve(undefined)
    const now = this.#clock()
    if (entry.deadline <= now) {
      this.#forget(id, entry)
      return Promise.resolve(undefined)
    }
    // A use renews the idle time and makes it the most recently used.
    entry.deadline = Math.min(now + this.#idleMs, entry.end)
    this.#entries.delete(id)
    this.#entries.set(id, entry)
    renew(this.#bySubject.get(entry.owner.sub), id)
    renew(this.#byClient.get(entry.owner.clientId), id)
    return Promise.resolve(entry.owner)
  }

  delete(id: string): Promise<void> {
    const entry = this.#entries.get(id)
    if (entry !== undefined) this.#forget(id, entry)
    return Promise.resolve()
  }

  #create(id: string, owner: SessionOwner, ttlSeconds: number): void {
    if (!Number.isFinite(ttlSeconds) || ttlSeconds <= 0) {
      throw new TypeError(`session ttlSeconds must be positive, got ${String(ttlSeconds)}`)
    }
    // Overwriting would hand someone else's session to this caller.
    if (this.#entries.has(id)) throw new Error('session id already exists')
    const now = this.#clock()
    const mine = this.#live(this.#bySubject, owner.sub, now, this.#maxPerSubject)
    if (mine >= this.#maxPerSubject) {
      throw this.#quota(
        owner.sub,
        now,
        `this subject holds ${this.#maxPerSubject} live sessions, its quota: end one (DELETE) or wait`,
      )
    }
    if (this.#live(this.#byClient, owner.clientId, now, this.#maxPerClient) >= this.#maxPerClient) {
      throw new QuotaExceededError(
        `this client holds ${this.#maxPerClient} live sessions, its quota`,
        this.#idleMs / 1000,
      )
    }
    if (this.#entries.size >= this.#max) this.#makeRoom(owner.sub, mine, now)
    const end = now + ttlSeconds * 1000
    this.#entries.set(id, {
      owner: { sub: owner.sub, clientId: owner.clientId, jkt: owner.jkt },
      end,
      deadline: Math.min(now + this.#idleMs, end),
    })
    add(this.#bySubject, owner.sub, id)
    add(this.#byClient, owner.clientId, id)
  }

  /**
   * The store is full: drop what has expired; if nothing has, evict the least recently used
   * session of the subject that holds the most. A flood from many subjects thus evicts the
   * flooders' sessions before a light user's. A caller that holds as many as anyone is refused
   * instead: evicting an equal would only make room for it at someone else's cost.
   */
  #makeRoom(sub: string, mine: number, now: number): void {
    // Least recently used first, so idle-expired sessions are at the front.
    for (const [id, entry] of this.#entries) {
      if (entry.deadline > now) break
      this.#forget(id, entry)
    }
    // Sessions that reached the end of their lifetime may hide behind recently used ones; a
    // full scan finds them, at most once a second.
    if (this.#entries.size >= this.#max && now - this.#lastFullSweep >= 1000) {
      this.#lastFullSweep = now
      for (const [id, entry] of this.#entries) if (entry.deadline <= now) this.#forget(id, entry)
    }
    if (this.#entries.size < this.#max) return
    let top: string | undefined
    let most = 0
    for (const [other, ids] of this.#bySubject) {
      if (other !== sub && ids.size > most) {
        top = other
        most = ids.size
      }
    }
    if (top === undefined || mine >= most) {
      throw this.#quota(
        sub,
        now,
        `the session store is full (${this.#max} live sessions) and this subject holds as many as anyone: end one of its sessions or wait`,
      )
    }
    const victim = this.#bySubject.get(top)!.values().next().value!
    this.#forget(victim, this.#entries.get(victim)!)
  }

  /**
   * The sessions of one subject or client; at its quota, only the live ones (its expired ones
   * are dropped then, so that a busy public client does not pay a scan on every create).
   */
  #live(index: Map<string, Set<string>>, owner: string, now: number, max: number): number {
    const ids = index.get(owner)
    if (ids === undefined || ids.size < max) return ids?.size ?? 0
    for (const id of ids) {
      const entry = this.#entries.get(id)!
      if (entry.deadline <= now) this.#forget(id, entry)
    }
    return index.get(owner)?.size ?? 0
  }

  /** A quota refusal that says when the subject's least recently used session ends. */
  #quota(sub: string, now: number, message: string): QuotaExceededError {
    let soonest = now + this.#idleMs
    for (const id of this.#bySubject.get(sub) ?? []) {
      soonest = Math.min(soonest, this.#entries.get(id)!.deadline)
    }
    return new QuotaExceededError(message, (soonest - now) / 1000)
  }

  #forget(id: string, entry: SessionEntry): void {
    this.#entries.delete(id)
    remove(this.#bySubject, entry.owner.sub, id)
    remove(this.#byClient, entry.owner.clientId, id)
  }
}

function positive(name: string, value: number | undefined, fallback: number): number {
  const result = value ?? fallback
  if (!Number.isSafeInteger(result) || result < 1) {
    throw new CallproofError(
      'ERR_INVALID_OPTIONS',
      `${name} must be a positive integer, got ${String(value)}`,
    )
  }
  return result
}

function add(index: Map<string, Set<string>>, owner: string, id: string): void {
  const ids = index.get(owner)
  if (ids === undefined) index.set(owner, new Set([id]))
  else ids.add(id)
}

function renew(ids: Set<string> | undefined, id: string): void {
  if (ids === undefined) return
  ids.delete(id)
  ids.add(id)
}

function remove(index: Map<string, Set<string>>, owner: string, id: string): void {
  const ids = index.get(owner)
  if (ids === undefined) return
  ids.delete(id)
  if (ids.size === 0) index.delete(owner)
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
