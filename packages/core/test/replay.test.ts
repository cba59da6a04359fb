/** MemoryReplayStore: first use wins, nothing is forgotten early, a full store fails closed. */
import { describe, expect, it } from 'vitest'
import { CallproofError, MemoryReplayStore } from '../src/index.js'

function fakeClock(start = 1_000_000) {
  let now = start
  return { clock: () => now, advance: (ms: number) => (now += ms) }
}

describe('MemoryReplayStore', () => {
  it('accepts a key once until it expires, then again', async () => {
    const t = fakeClock()
    const store = new MemoryReplayStore({ clock: t.clock })
    expect(await store.consume('a', t.clock() + 1000)).toBe(true)
    expect(await store.consume('a', t.clock() + 1000)).toBe(false)
    t.advance(999)
    expect(await store.consume('a', t.clock() + 1000)).toBe(false)
    t.advance(1)
    expect(await store.consume('a', t.clock() + 1000)).toBe(true)
  })

  it('is atomic for concurrent consumers of one key', async () => {
    const store = new MemoryReplayStore()
    const results = await Promise.all(
      Array.from({ length: 50 }, () => store.consume('k', Date.now() + 60_000)),
    )
    expect(results.filter(Boolean)).toHaveLength(1)
  })

  it('never evicts an unexpired entry to make room: a full store refuses (fail closed)', async () => {
    const t = fakeClock()
    const store = new MemoryReplayStore({ maxEntries: 3, clock: t.clock })
    for (const k of ['a', 'b', 'c']) expect(await store.consume(k, t.clock() + 60_000)).toBe(true)
    const err = await store.consume('d', t.clock() + 60_000).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(CallproofError)
    expect(err).toMatchObject({ code: 'ERR_REPLAY_STORE_FULL' })
    // Every original entry is still remembered: none was dropped to make room for 'd'.
    for (const k of ['a', 'b', 'c']) expect(await store.consume(k, t.clock() + 60_000)).toBe(false)
    expect(store.size).toBe(3)
  })

  it('a flood of fresh keys cannot flush a remembered one', async () => {
    const t = fakeClock()
    const store = new MemoryReplayStore({ maxEntries: 100, clock: t.clock })
    await store.consume('victim', t.clock() + 60_000)
    for (let i = 0; i < 1000; i++)
      await store.consume(`flood-${i}`, t.clock() + 60_000).catch(() => undefined)
    expect(await store.consume('victim', t.clock() + 60_000)).toBe(false)
  })

  it('makes room again once entries expire, oldest expiry first', async () => {
    const t = fakeClock()
    const store = new MemoryReplayStore({ maxEntries: 2, clock: t.clock })
    await store.consume('short', t.clock() + 1_000)
    await store.consume('long', t.clock() + 10_000)
    await expect(store.consume('x', t.clock() + 1_000)).rejects.toMatchObject({
      code: 'ERR_REPLAY_STORE_FULL',
    })
    t.advance(1_000)
    expect(await store.consume('x', t.clock() + 5_000)).toBe(true)
    expect(await store.consume('long', t.clock() + 10_000)).toBe(false)
    expect(store.size).toBe(2)
  })

  it('keeps the later expiry of a key recorded again after expiring', async () => {
    const t = fakeClock()
    const store = new MemoryReplayStore({ clock: t.clock })
    await store.consume('k', t.clock() + 100)
    t.advance(100)
    expect(await store.consume('k', t.clock() + 10_000)).toBe(true)
    t.advance(5_000)
    expect(await store.consume('k', t.clock() + 10_000)).toBe(false)
  })

  it('validates its options', () => {
    expect(() => new MemoryReplayStore({ maxEntries: 0 })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_OPTIONS' }),
    )
    expect(() => new MemoryReplayStore({ maxEntries: 1.5 })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_OPTIONS' }),
    )
  })
})
