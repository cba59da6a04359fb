/**
 * MemorySessionStore quotas: per subject and per client, idle expiry renewed on use, and a full
 * store that evicts (the least recently used session of the biggest holder) instead of locking
 * every other caller out.
 */
import { describe, expect, it } from 'vitest'
import { QuotaExceededError } from '@callproof/core'
import { MemorySessionStore } from '../src/index.js'

const owner = (sub: string, clientId = 'cli') => ({ sub, clientId, jkt: `jkt-${sub}` })
const HOUR = 3600

describe('MemorySessionStore quotas', () => {
  it('refuses a subject at its quota with 429 and when to retry, and nobody else', async () => {
    let now = 1_000_000
    const store = new MemorySessionStore({ maxSessionsPerSubject: 3, clock: () => now })
    for (const id of ['m1', 'm2', 'm3']) {
      await store.create(id, owner('mallory'), HOUR)
      now += 60_000
    }
    const err = await store.create('m4', owner('mallory'), HOUR).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(QuotaExceededError)
    // m1 was made 3 min ago and idles out after 30 min.
    expect(err).toMatchObject({ code: 'ERR_QUOTA_EXCEEDED', retryAfterSeconds: 27 * 60 })
    // Over all of mallory's clients.
    await expect(store.create('m5', owner('mallory', 'other'), HOUR)).rejects.toMatchObject({
      code: 'ERR_QUOTA_EXCEEDED',
    })
    await store.create('a1', owner('alice'), HOUR)
    expect(await store.owner('a1')).toEqual(owner('alice'))
    // Ending one of them makes room for exactly one.
    await store.delete('m2')
    await store.create('m4', owner('mallory'), HOUR)
    await expect(store.create('m6', owner('mallory'), HOUR)).rejects.toMatchObject({
      code: 'ERR_QUOTA_EXCEEDED',
    })
  })

  it('refuses a client at its quota when one is set, and not another client', async () => {
    const store = new MemorySessionStore({ maxSessionsPerClient: 2 })
    await store.create('1', owner('s1', 'dyn'), HOUR)
    await store.create('2', owner('s2', 'dyn'), HOUR)
    await expect(store.create('3', owner('s3', 'dyn'), HOUR)).rejects.toMatchObject({
      code: 'ERR_QUOTA_EXCEEDED',
    })
    await store.create('4', owner('s3', 'cli'), HOUR)
  })

  it('ends a session left idle, renews one in use, and never past its lifetime', async () => {
    let now = 0
    const store = new MemorySessionStore({ idleSeconds: 60, clock: () => now })
    await store.create('used', owner('alice'), 300)
    await store.create('idle', owner('alice'), 300)
    for (let i = 0; i < 4; i++) {
      now += 59_000
      expect(await store.owner('used')).toEqual(owner('alice'))
    }
    expect(await store.owner('idle')).toBeUndefined()
    now = 290_000
    expect(await store.owner('used')).toEqual(owner('alice'))
    now = 299_999
    expect(await store.owner('used')).toEqual(owner('alice'))
    now = 300_000
    expect(await store.owner('used')).toBeUndefined()
  })

  it('idle sessions free their owner’s quota', async () => {
    let now = 0
    const store = new MemorySessionStore({
      maxSessionsPerSubject: 1,
      idleSeconds: 60,
      clock: () => now,
    })
    await store.create('a', owner('alice'), HOUR)
    await expect(store.create('b', owner('alice'), HOUR)).rejects.toMatchObject({
      code: 'ERR_QUOTA_EXCEEDED',
      retryAfterSeconds: 60,
    })
    now = 60_000
    await store.create('b', owner('alice'), HOUR)
  })

  it('a store full of one flooder evicts the flooder’s oldest idle session for a newcomer', async () => {
    let now = 0
    const store = new MemorySessionStore({
      maxSessions: 10,
      maxSessionsPerSubject: 8,
      clock: () => now,
    })
    await store.create('alice-1', owner('alice'), HOUR)
    await store.create('bob-1', owner('bob'), HOUR)
    for (let i = 0; i < 8; i++) {
      now += 1000
      await store.create(`m${i}`, owner('mallory'), HOUR)
    }
    // Mallory's first session was used last; m1 is now her least recently used one.
    expect(await store.owner('m0')).toEqual(owner('mallory'))
    // Full: carol gets in, at the cost of the biggest holder's least recently used session.
    await store.create('carol-1', owner('carol'), HOUR)
    expect(await store.owner('m1')).toBeUndefined()
    expect(await store.owner('m0')).toEqual(owner('mallory'))
    expect(await store.owner('alice-1')).toEqual(owner('alice'))
    expect(await store.owner('bob-1')).toEqual(owner('bob'))
    // Mallory, holding the most, is refused rather than evicting someone else.
    await expect(store.create('m9', owner('mallory'), HOUR)).rejects.toMatchObject({
      code: 'ERR_QUOTA_EXCEEDED',
      message: expect.stringMatching(/full/),
    })
    // Alice can still open more (until she holds as many as the biggest holder).
    await store.create('alice-2', owner('alice'), HOUR)
    expect(await store.owner('alice-1')).toEqual(owner('alice'))
  })

  it('a full store of many single-session subjects still admits a newcomer', async () => {
    const store = new MemorySessionStore({ maxSessions: 100, maxSessionsPerSubject: 1 })
    for (let i = 0; i < 100; i++) await store.create(`f${i}`, owner(`flood-${i}`), HOUR)
    await store.create('alice', owner('alice'), HOUR)
    expect(await store.owner('alice')).toEqual(owner('alice'))
    // Exactly one of the floods gave way: the least recently used one.
    expect(await store.owner('f0')).toBeUndefined()
    expect(await store.owner('f1')).toEqual(owner('flood-1'))
  })

  it('a full store makes room from expired sessions first, idle or at the end of their lifetime', async () => {
    let now = 0
    const store = new MemorySessionStore({ maxSessions: 2, idleSeconds: 60, clock: () => now })
    await store.create('a', owner('alice'), HOUR)
    now = 500
    await store.create('b', owner('alice'), HOUR)
    now = 60_000
    await store.create('c', owner('alice'), HOUR) // a idled out
    now = 60_500
    await store.create('d', owner('alice'), HOUR) // b idled out, half a second later
    expect(await store.owner('c')).toEqual(owner('alice'))
    // A session at the end of its lifetime, behind one that is still in use.
    now = 61_000
    expect(await store.owner('c')).toEqual(owner('alice'))
    await store.delete('d')
    await store.create('short', owner('alice'), 10)
    now = 70_000
    // Used last, so it is behind c in the order of use; yet it ends first, at 71 s.
    expect(await store.owner('short')).toEqual(owner('alice'))
    now = 71_000
    await store.create('e', owner('alice'), HOUR)
    expect(await store.owner('short')).toBeUndefined()
    expect(await store.owner('c')).toEqual(owner('alice'))
  })

  it('validates its options and its input', async () => {
    for (const key of [
      'maxSessions',
      'maxSessionsPerSubject',
      'maxSessionsPerClient',
      'idleSeconds',
    ] as const) {
      for (const bad of [0, -1, 1.5, Number.NaN]) {
        expect(() => new MemorySessionStore({ [key]: bad })).toThrow(
          expect.objectContaining({
            code: 'ERR_INVALID_OPTIONS',
            message: expect.stringContaining(key),
          }),
        )
      }
    }
    const store = new MemorySessionStore()
    await expect(store.create('x', owner('a'), 0)).rejects.toThrow(TypeError)
    await store.create('x', owner('a'), 10)
    await expect(store.create('x', owner('b'), 10)).rejects.toThrow(/already exists/)
    expect(await store.owner('x')).toEqual(owner('a'))
  })
})
