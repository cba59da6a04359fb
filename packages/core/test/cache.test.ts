/** LruCache: bounded, least recently used evicted first; the last-read memo never serves stale data. */
import { describe, expect, it } from 'vitest'
import { LruCache } from '../src/cache.js'

describe('LruCache', () => {
  it('refuses a size that is not a positive integer', () => {
    expect(() => new LruCache(0)).toThrow(RangeError)
    expect(() => new LruCache(1.5)).toThrow(RangeError)
  })

  it('evicts the least recently used entry, counting reads (also repeated reads of one key)', () => {
    const cache = new LruCache<string, number>(2)
    cache.set('a', 1)
    cache.set('b', 2)
    expect(cache.get('a')).toBe(1)
    expect(cache.get('a')).toBe(1)
    cache.set('c', 3)
    expect(cache.get('b')).toBeUndefined()
    expect(cache.get('a')).toBe(1)
    expect(cache.get('c')).toBe(3)
    expect(cache.size).toBe(2)
  })

  it('a key read last and then evicted by later writes is gone', () => {
    const cache = new LruCache<string, number>(1)
    cache.set('a', 1)
    expect(cache.get('a')).toBe(1)
    cache.set('b', 2)
    expect(cache.get('a')).toBeUndefined()
  })

  it('a key read last and then deleted is gone', () => {
    const cache = new LruCache<string, number>(4)
    cache.set('a', 1)
    expect(cache.get('a')).toBe(1)
    cache.delete('a')
    expect(cache.get('a')).toBeUndefined()
  })

  it('a key read last and then overwritten returns the new value', () => {
    const cache = new LruCache<string, number>(4)
    cache.set('a', 1)
    expect(cache.get('a')).toBe(1)
    cache.set('a', 2)
    expect(cache.get('a')).toBe(2)
  })

  it('finds an equal key that is another string instance', () => {
    const cache = new LruCache<string, number>(4)
    const key = 'x'.repeat(700)
    cache.set(key, 1)
    expect(cache.get(`${'x'.repeat(699)}x`)).toBe(1)
    expect(cache.get(`${'x'.repeat(699)}x`)).toBe(1)
    expect(cache.get(`${'x'.repeat(699)}y`)).toBeUndefined()
  })
})
