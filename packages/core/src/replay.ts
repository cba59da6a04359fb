/**
 * Replay protection: a proof (key thumbprint + `jti`) is accepted once. The store remembers each
 * key until the proof could no longer be accepted anyway, and never forgets one earlier: an
 * evicted entry would make its proof replayable.
 *
 * @module
 */

import { CallproofError } from './errors.js'
import type { Clock } from './clock.js'

/**
 * Records one-time keys (proofs, approvals). Implementations must be atomic across every
 * instance that shares them (a memory store for one process, Redis `SET NX PX` for several).
 *
 * @example
 * ```ts
 * if (!(await store.consume(`dpop:${jkt}:${jti}`, (iat + 65) * 1000))) throw new CallproofError('ERR_REPLAY', 'replayed proof')
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-11.1
 */
export interface ReplayStore {
  /**
   * Atomically records `key` until `expiresAt` (ms). true = first time; false = seen. Throws
   * ERR_REPLAY_STORE_FULL / ERR_STORE_UNAVAILABLE. Never evicts an unexpired entry.
   */
  consume(key: string, expiresAt: number): Promise<boolean>
}

/**
 * Options of {@link MemoryReplayStore}.
 *
 * @example
 * ```ts
 * new MemoryReplayStore({ maxEntries: 1_000_000 })
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-11.1
 */
export interface MemoryReplayStoreOptions {
  /** The most unexpired entries held (default 100 000); beyond it, calls fail closed. */
  maxEntries?: number
  /** Milliseconds since the epoch (default `Date.now`). */
  clock?: Clock
}

/**
 * The embedded replay store of one process: bounded, and when it is full of unexpired entries it
 * refuses (ERR_REPLAY_STORE_FULL, 503) instead of forgetting one, which would admit a replay.
 * Expired entries are dropped lazily through a min-heap of expiries, so no call pays a full scan.
 *
 * @example
 * ```ts
 * const replay = new MemoryReplayStore({ maxEntries: 100_000 })
 * const verifier = createVerifier({ resource, issuers, keys, replay })
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-11.1
 */
export class MemoryReplayStore implements ReplayStore {
  readonly #entries = new Map<string, number>()
  /** A binary min-heap of [expiresAt, key]; may hold stale pairs for keys recorded again. */
  readonly #heap: Array<[number, string]> = []
  readonly #max: number
  readonly #clock: Clock

  /** @param options - size bound and clock */
  constructor(options?: MemoryReplayStoreOptions) {
    const max = options?.maxEntries ?? 100_000
    if (!Number.isInteger(max) || max < 1) {
      throw new CallproofError('ERR_INVALID_OPTIONS', 'maxEntries must be a positive integer')
    }
    if (options?.clock !== undefined && typeof options.clock !== 'function') {
      throw new CallproofError('ERR_INVALID_OPTIONS', 'clock must be a function')
    }
    this.#max = max
    this.#clock = options?.clock ?? Date.now
  }

  /** The number of entries currently held (expired ones included until swept). */
  get size(): number {
    return this.#entries.size
  }

  /** {@inheritDoc ReplayStore.consume} */
  async consume(key: string, expiresAt: number): Promise<boolean> {
    // Synchronous from here on: no await between the look-up and the write, so it is atomic.
    if (typeof key !== 'string' || !Number.isFinite(expiresAt)) {
      throw new TypeError('consume(key: string, expiresAt: finite number)')
    }
    const now = this.#clock()
    this.#sweep(now)
    const existing = this.#entries.get(key)
    if (existing !== undefined && existing > now) return false
    if (existing === undefined && this.#entries.size >= this.#max) {
      throw new CallproofError(
        'ERR_REPLAY_STORE_FULL',
        `the replay store holds ${this.#max} unexpired entries; refusing rather than forgetting one`,
      )
    }
    this.#entries.set(key, expiresAt)
    this.#push([expiresAt, key])
    return true
  }

  /** Drops every entry whose expiry has passed (amortized O(log n) per entry). */
  #sweep(now: number): void {
    const heap = this.#heap
    while (heap.length > 0 && heap[0]![0] <= now) {
      const [expiresAt, key] = this.#pop()
      // Only if the map still holds this very expiry (the key may have been recorded again).
      if (this.#entries.get(key) === expiresAt) this.#entries.delete(key)
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
