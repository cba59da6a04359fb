/** MemoryReplayStore: first use wins, nothing is forgotten early, a full store fails closed. */
import { describe, expect, it } from 'vitest'
import {
  CallproofError,
  MemoryReplayStore,
  QuotaExceededError,
  toHttpAnswer,
} from '../src/index.js'

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

describe('MemoryReplayStore quotas per caller', () => {
  const alice = { sub: 'alice', clientId: 'cli' }
  const bob = { sub: 'bob', clientId: 'cli' }

  it('refuses a subject at its quota with 429 and Retry-After, and nobody else', async () => {
    const t = fakeClock()
    const store = new MemoryReplayStore({ maxEntriesPerSubject: 3, clock: t.clock })
    for (const k of ['a1', 'a2', 'a3']) {
      expect(await store.consume(k, t.clock() + 65_000, alice)).toBe(true)
      t.advance(1_000)
    }
    const err = await store.consume('a4', t.clock() + 65_000, alice).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(QuotaExceededError)
    expect(err).toMatchObject({ code: 'ERR_QUOTA_EXCEEDED', retryAfterSeconds: 62 })
    const answer = toHttpAnswer(err, { resourceMetadata: 'https://r.example/m', algs: ['ES256'] })
    expect(answer.status).toBe(429)
    expect(answer.headers['retry-after']).toBe('62')
    expect(answer.body.code).toBe('ERR_QUOTA_EXCEEDED')
    // The refused key was not recorded: it is still new once there is room.
    expect(store.size).toBe(3)
    // Another subject of the same client is not affected.
    expect(await store.consume('b1', t.clock() + 65_000, bob)).toBe(true)
    // A replay of a caller at its quota is still a replay, not a quota answer.
    expect(await store.consume('a1', t.clock() + 65_000, alice)).toBe(false)
    // Room again once alice's oldest entry has expired, and only then.
    t.advance(61_999)
    await expect(store.consume('a4', t.clock() + 65_000, alice)).rejects.toMatchObject({
      code: 'ERR_QUOTA_EXCEEDED',
      retryAfterSeconds: 1,
    })
    t.advance(1)
    expect(await store.consume('a4', t.clock() + 65_000, alice)).toBe(true)
  })

  it('refuses a client at its quota over all its subjects, and not another client', async () => {
    const t = fakeClock()
    const store = new MemoryReplayStore({ maxEntriesPerClient: 2, clock: t.clock })
    expect(await store.consume('1', t.clock() + 60_000, { sub: 's1', clientId: 'flood' })).toBe(
      true,
    )
    expect(await store.consume('2', t.clock() + 60_000, { sub: 's2', clientId: 'flood' })).toBe(
      true,
    )
    await expect(
      store.consume('3', t.clock() + 60_000, { sub: 's3', clientId: 'flood' }),
    ).rejects.toMatchObject({ code: 'ERR_QUOTA_EXCEEDED' })
    expect(await store.consume('4', t.clock() + 60_000, { sub: 's3', clientId: 'other' })).toBe(
      true,
    )
    // Its entries expiring give the client its quota back.
    t.advance(60_000)
    expect(await store.consume('3', t.clock() + 60_000, { sub: 's3', clientId: 'flood' })).toBe(
      true,
    )
  })

  it('defaults: 2 000 per subject, half the total per client, validated', async () => {
    const t = fakeClock()
    const store = new MemoryReplayStore({ clock: t.clock })
    for (let i = 0; i < 2_000; i++) await store.consume(`k${i}`, t.clock() + 60_000, alice)
    await expect(store.consume('k2000', t.clock() + 60_000, alice)).rejects.toMatchObject({
      code: 'ERR_QUOTA_EXCEEDED',
    })
    const small = new MemoryReplayStore({ maxEntries: 4, maxEntriesPerSubject: 10, clock: t.clock })
    for (const [i, sub] of ['x', 'y'].entries()) {
      await small.consume(`c${i}`, t.clock() + 60_000, { sub, clientId: 'one' })
    }
    await expect(
      small.consume('c2', t.clock() + 60_000, { sub: 'z', clientId: 'one' }),
    ).rejects.toMatchObject({ code: 'ERR_QUOTA_EXCEEDED' })
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      expect(() => new MemoryReplayStore({ maxEntriesPerSubject: bad })).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_OPTIONS' }),
      )
      expect(() => new MemoryReplayStore({ maxEntriesPerClient: bad })).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_OPTIONS' }),
      )
    }
    await expect(
      store.consume('k', t.clock() + 1, { sub: 1 } as unknown as { sub: string; clientId: string }),
    ).rejects.toThrow(TypeError)
  })

  it('a store filled by many callers evicts nothing: the oldest proof is still refused', async () => {
    const t = fakeClock()
    const store = new MemoryReplayStore({ maxEntries: 50, maxEntriesPerSubject: 5, clock: t.clock })
    expect(await store.consume('oldest', t.clock() + 65_000, alice)).toBe(true)
    let refusedFull = 0
    for (let i = 0; i < 20; i++) {
      for (let j = 0; j < 5; j++) {
        t.advance(10)
        await store
          .consume(`s${i}-${j}`, t.clock() + 65_000, { sub: `s${i}`, clientId: `c${i}` })
          .catch((e: unknown) => {
            expect(e).toMatchObject({ code: 'ERR_REPLAY_STORE_FULL' })
            refusedFull++
          })
      }
    }
    expect(refusedFull).toBe(51)
    expect(store.size).toBe(50)
    // Still inside its window: the oldest proof is remembered, and a replay of it refused.
    t.advance(60_000)
    expect(await store.consume('oldest', t.clock() + 65_000, alice)).toBe(false)
    // Expired entries free their owners' quota and the total.
    t.advance(5_000)
    expect(await store.consume('oldest', t.clock() + 65_000, alice)).toBe(true)
    expect(store.size).toBeLessThan(50)
  })
})
