/**
 * Replay protection: a proof (key thumbprint + `jti`) is accepted once. The store remembers each
 * key until the proof could no longer be accepted anyway, and never forgets one earlier: an
 * evicted entry would make its proof replayable.
 *
 * @module
 */

import { CallproofError, QuotaExceededError } from './errors.js'
import type { Clock } from './clock.js'

/**
 * Whose entry a key is: the verified caller's subject and client. A store counts each caller's
 * unexpired entries against that caller's quota, so that one caller cannot fill the store that
 * every caller shares. A verified `Caller` fits.
 *
 * @example
 * ```ts
 * await store.consume(`approval:${tokenId}`, expiresAt, { sub: 'alice', clientId: 'cli' })
 * ```
 */
export interface ReplayOwner {
  /** The token's `sub`. */
  readonly sub: string
  /** The token's `client_id`. */
  readonly clientId: string
}

/**
 * Records one-time keys (proofs, approvals). Implementations must be atomic across every
 * instance that shares them (a memory store for one process, Redis `SET NX PX` for several).
 *
 * @example
 * ```ts
 * if (!(await store.consume(`dpop:${jkt}:${jti}`, (iat + 65) * 1000, caller))) throw new CallproofError('ERR_REPLAY', 'replayed proof')
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-11.1
 */
export interface ReplayStore {
  /**
   * Atomically records `key` until `expiresAt` (ms). true = first time; false = seen. Never
   * evicts an unexpired entry. `owner` is the verified caller the entry is counted against: a
   * caller at its quota is refused with {@link QuotaExceededError} (ERR_QUOTA_EXCEEDED, 429)
   * while others go on; a store full of unexpired entries throws ERR_REPLAY_STORE_FULL (503);
   * an unreachable one ERR_STORE_UNAVAILABLE. A key already seen answers false even for a
   * caller at its quota (a replay is a replay). Without `owner` only the total counts.
   */
  consume(key: string, expiresAt: number, owner?: ReplayOwner): Promise<boolean>
}

/**
 * Options of {@link MemoryReplayStore}.
 *
 * @example
 * ```ts
 * new MemoryReplayStore({ maxEntries: 1_000_000, maxEntriesPerSubject: 5_000 })
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-11.1
 */
export interface MemoryReplayStoreOptions {
  /** The most unexpired entries held (default 100 000); beyond it, calls fail closed (503). */
  maxEntries?: number
  /**
   * The most unexpired entries of one subject (`sub`), proofs and approvals together (default
   * 2 000: a subject making 30 calls a second for the whole 65 s window). Beyond it that subject
   * is refused (429) until its oldest entry expires; nobody else is.
   */
  maxEntriesPerSubject?: number
  /**
   * The most unexpired entries of one client (`client_id`), over all its subjects (default half
   * of `maxEntries`), so that no single client can fill the store for the others.
   */
  maxEntriesPerClient?: number
  /** Milliseconds since the epoch (default `Date.now`). */
  clock?: Clock
}

/** The defaults of {@link MemoryReplayStoreOptions}; docs/operations.md says how to size them. */
const DEFAULT_MAX_ENTRIES = 100_000
const DEFAULT_MAX_PER_SUBJECT = 2_000

interface Entry {
  expiresAt: number
  sub: string | undefined
  clientId: string | undefined
}

/**
 * The embedded replay store of one process: bounded in total and per caller, and it never
 * forgets an unexpired entry (that would admit a replay). A caller at its quota is refused
 * (ERR_QUOTA_EXCEEDED, 429) and only that caller; a store full of unexpired entries refuses
 * everyone (ERR_REPLAY_STORE_FULL, 503): that is failing closed, and with the per-caller quotas
 * it takes `maxEntries / maxEntriesPerSubject` distinct verified subjects (each with a valid
 * token of a trusted issuer) flooding at once. Expired entries are dropped lazily through a
 * min-heap of expiries, so no call pays a full scan.
 *
 * @example
 * ```ts
 * const replay = new MemoryReplayStore({ maxEntries: 100_000 })
 * const verifier = createVerifier({ resource, issuers, keys, replay })
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-11.1
 */
export class MemoryReplayStore implements ReplayStore {
  readonly #entries = new Map<string, Entry>()
  /** Each subject's and each client's live keys, oldest first (for the quota and Retry-After). */
  readonly #bySubject = new Map<string, Set<string>>()
  readonly #byClient = new Map<string, Set<string>>()
  /** A binary min-heap of [expiresAt, key]; may hold stale pairs for keys recorded again. */
  readonly #heap: Array<[number, string]> = []
  readonly #max: number
  readonly #maxPerSubject: number
  readonly #maxPerClient: number
  readonly #clock: Clock

  /** @param options - size bounds and clock */
  constructor(options?: MemoryReplayStoreOptions) {
    const max = positive('maxEntries', options?.maxEntries, DEFAULT_MAX_ENTRIES)
    this.#max = max
    this.#maxPerSubject = positive(
      'maxEntriesPerSubject',
      options?.maxEntriesPerSubject,
      Math.min(DEFAULT_MAX_PER_SUBJECT, max),
    )
    this.#maxPerClient = positive(
      'maxEntriesPerClient',
      options?.maxEntriesPerClient,
      Math.max(1, Math.floor(max / 2)),
    )
    if (options?.clock !== undefined && typeof options.clock !== 'function') {
      throw new CallproofError('ERR_INVALID_OPTIONS', 'clock must be a function')
    }
    this.#clock = options?.clock ?? Date.now
  }

  /** The number of entries currently held (expired ones included until swept). */
  get size(): number {
    return this.#entries.size
  }

  /** {@inheritDoc ReplayStore.consume} */
  async consume(key: string, expiresAt: number, owner?: ReplayOwner): Promise<boolean> {
    // Synchronous from here on: no await between the look-up and the write, so it is atomic.
    if (typeof key !== 'string' || !Number.isFinite(expiresAt)) {
      throw new TypeError('consume(key: string, expiresAt: finite number, owner?)')
    }
    if (
      owner !== undefined &&
      (typeof owner.sub !== 'string' || typeof owner.clientId !== 'string')
    ) {
      throw new TypeError('consume owner must be { sub: string, clientId: string }')
    }
    const now = this.#clock()
    this.#sweep(now)
    // After the sweep every entry left is unexpired.
    if (this.#entries.has(key)) return false
    if (this.#entries.size >= this.#max) {
      throw new CallproofError(
        'ERR_REPLAY_STORE_FULL',
        `the replay store holds ${this.#max} unexpired entries; refusing rather than forgetting one`,
      )
    }
    if (owner !== undefined) {
      this.#checkQuota(this.#bySubject.get(owner.sub), this.#maxPerSubject, 'subject', now)
      this.#checkQuota(this.#byClient.get(owner.clientId), this.#maxPerClient, 'client', now)
    }
    this.#entries.set(key, { expiresAt, sub: owner?.sub, clientId: owner?.clientId })
    if (owner !== undefined) {
      add(this.#bySubject, owner.sub, key)
      add(this.#byClient, owner.clientId, key)
    }
    this.#push([expiresAt, key])
    return true
  }

  /** Refuses the caller whose own live entries fill its quota (and only that caller). */
  #checkQuota(keys: Set<string> | undefined, max: number, kind: string, now: number): void {
    if (keys === undefined || keys.size < max) return
    // Entries of one caller expire in about the order they were made (iat + a fixed window).
    const oldest = this.#entries.get(keys.values().next().value!)?.expiresAt ?? now + 1000
    throw new QuotaExceededError(
      `this ${kind} holds ${max} unexpired proofs or approvals, its quota in the replay store`,
      (oldest - now) / 1000,
    )
  }

  /** Drops every entry whose expiry has passed (amortized O(log n) per entry). */
  #sweep(now: number): void {
    const heap = this.#heap
    while (heap.length > 0 && heap[0]![0] <= now) {
      const [expiresAt, key] = this.#pop()
      // Only if the map still holds this very expiry (the key may have been recorded again).
      const entry = this.#entries.get(key)
      if (entry?.expiresAt !== expiresAt) continue
      this.#entries.delete(key)
      if (entry.sub !== undefined) remove(this.#bySubject, entry.sub, key)
      if (entry.clientId !== undefined) remove(this.#byClient, entry.clientId, key)
    }
  }

  #push(item: [number, string]): void {
    const heap = this.#heap
    heap.push(item)
    let i = heap.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (heap[parent]![0] <= item[0]) break
      heap[i] = heap[parent]!
      i = parent
    }
    heap[i] = item
  }

  #pop(): [number, string] {
    const heap = this.#heap
    const top = heap[0]!
    const last = heap.pop()!
    if (heap.length > 0) {
      let i = 0
      for (;;) {
        const left = 2 * i + 1
        if (left >= heap.length) break
        const right = left + 1
        const child = right < heap.length && heap[right]![0] < heap[left]![0] ? right : left
        if (heap[child]![0] >= last[0]) break
        heap[i] = heap[child]!
        i = child
      }
      heap[i] = last
    }
    return top
  }
}

function positive(name: string, value: number | undefined, fallback: number): number {
  const result = value ?? fallback
  if (!Number.isSafeInteger(result) || result < 1) {
    throw new CallproofError('ERR_INVALID_OPTIONS', `${name} must be a positive integer`)
  }
  return result
}

function add(index: Map<string, Set<string>>, owner: string, key: string): void {
  const keys = index.get(owner)
  if (keys === undefined) index.set(owner, new Set([key]))
  else keys.add(key)
}

function remove(index: Map<string, Set<string>>, owner: string, key: string): void {
  const keys = index.get(owner)
  if (keys === undefined) return
  keys.delete(key)
  // An owner with nothing in flight takes no memory.
  if (keys.size === 0) index.delete(owner)
}
