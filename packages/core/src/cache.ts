/**
 * A bounded least-recently-used map. Used for what is safe to forget: imported proof keys and
 * verified tokens (forgetting one only costs a re-verification). Never used for replay state,
 * which must not be forgotten early.
 *
 * @module
 */

/**
 * A bounded LRU map: reading an entry makes it the most recent; inserting past `maxEntries`
 * drops the least recently used one.
 *
 * @example
 * ```ts
 * const cache = new LruCache<string, CryptoKey>(1000)
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-4.3
 */
export class LruCache<K, V> {
  readonly #map = new Map<K, V>()
  readonly #max: number
  // The most recently read entry: a returning client presents the same token and proof header
  // on every call, and comparing a key with === is much cheaper than hashing a fresh
  // 1 KB header string for the Map and moving its entry. Cleared by every write.
  #lastKey: K | undefined
  #lastValue: V | undefined

  /** @param maxEntries - the most entries kept (a positive integer) */
  constructor(maxEntries: number) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new RangeError('maxEntries must be a positive integer')
    }
    this.#max = maxEntries
  }

  /** The value for `key`, now the most recently used, or undefined. */
  get(key: K): V | undefined {
    // Still the most recently used entry: nothing was written since it was read.
    if (this.#lastValue !== undefined && this.#lastKey === key) return this.#lastValue
    const value = this.#map.get(key)
    if (value === undefined) return undefined
    this.#map.delete(key)
    this.#map.set(key, value)
    this.#lastKey = key
    this.#lastValue = value
    return value
  }

  /** Stores `value` as the most recently used entry, evicting the least recently used if full. */
  set(key: K, value: V): void {
    this.#forgetLast()
    this.#map.delete(key)
    this.#map.set(key, value)
    if (this.#map.size > this.#max) {
      const oldest = this.#map.keys().next()
      if (!oldest.done) this.#map.delete(oldest.value)
    }
  }

  /** Removes `key`. */
  delete(key: K): void {
    this.#forgetLast()
    this.#map.delete(key)
  }

  #forgetLast(): void {
    this.#lastKey = undefined
    this.#lastValue = undefined
  }

  /** The number of entries. */
  get size(): number {
    return this.#map.size
  }
}
