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

  /** @param maxEntries - the most entries kept (a positive integer) */
  constructor(maxEntries: number) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new RangeError('maxEntries must be a positive integer')
    }
    this.#max = maxEntries
  }

  /** The value for `key`, now the most recently used, or undefined. */
  get(key: K): V | undefined {
    const value = this.#map.get(key)
    if (value === undefined) return undefined
    this.#map.delete(key)
    this.#map.set(key, value)
    return value
  }

  /** Stores `value` as the most recently used entry, evicting the least recently used if full. */
  set(key: K, value: V): void {
    this.#map.delete(key)
    this.#map.set(key, value)
    if (this.#map.size > this.#max) {
      const oldest = this.#map.keys().next()
      if (!oldest.done) this.#map.delete(oldest.value)
    }
  }

  /** Removes `key`. */
  delete(key: K): void {
    this.#map.delete(key)
  }

  /** The number of entries. */
  get size(): number {
    return this.#map.size
  }
}
