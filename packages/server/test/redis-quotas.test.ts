/**
 * The Redis stores' quotas against a real redis-server: a caller at its quota is refused (429)
 * on every instance while others go on, a full replay store never drops an unexpired entry,
 * sessions idle out and are renewed by use, and a full session store evicts the biggest holder's
 * least recently used session instead of locking everyone out.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { CallproofError, QuotaExceededError } from '@callproof/core'
import { createRedisStores, type RedisStores, type RedisStoresOptions } from '../src/redis/index.js'
import { startRedisServer, type TestRedisServer } from './support/redis-server.js'

vi.setConfig({ testTimeout: 20_000 })

let server: TestRedisServer
const open: RedisStores[] = []
let unique = 0

/** A store instance on a prefix of its own test (or shared, to play two server instances). */
async function instance(prefix: string, options: Partial<RedisStoresOptions> = {}) {
  const stores = createRedisStores({ url: server.url, prefix, timeoutMs: 2000, ...options })
  open.push(stores)
  await stores.ready()
  return stores
}

function fresh(): string {
  return `q${++unique}-${Math.random().toString(36).slice(2)}:`
}

const who = (sub: string, clientId = 'cli') => ({ sub, clientId, jkt: `jkt-${sub}` })

beforeAll(async () => {
  server = await startRedisServer()
})

afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()))
})

afterAll(async () => {
  await server?.stop()
})

describe('replay quotas on Redis', () => {
  it('refuses a subject at its quota on every instance with 429, and nobody else', async () => {
    const prefix = fresh()
    const a = await instance(prefix, { replay: { maxEntriesPerSubject: 3 } })
    const b = await instance(prefix, { replay: { maxEntriesPerSubject: 3 } })
    const at = Date.now() + 60_000
    for (const k of ['m1', 'm2', 'm3']) {
      expect(await (k === 'm2' ? b : a).replay.consume(k, at, who('mallory'))).toBe(true)
    }
    const err = await b.replay.consume('m4', at, who('mallory')).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(QuotaExceededError)
    expect((err as QuotaExceededError).code).toBe('ERR_QUOTA_EXCEEDED')
    expect((err as QuotaExceededError).retryAfterSeconds).toBeGreaterThanOrEqual(55)
    expect((err as QuotaExceededError).retryAfterSeconds).toBeLessThanOrEqual(60)
    // The refused key was not recorded.
    expect(await server.command('EXISTS', `${prefix}replay:m4`)).toBe(':0\r\n')
    // A replay by a caller at its quota is still a replay.
    expect(await a.replay.consume('m1', at, who('mallory'))).toBe(false)
    // Another subject of the same client, and a call without owner, go on.
    expect(await a.replay.consume('b1', at, who('bob'))).toBe(true)
    expect(await a.replay.consume('anon', at)).toBe(true)
  })

  it('frees a subject’s quota when its entries expire, not before', async () => {
    const prefix = fresh()
    const a = await instance(prefix, { replay: { maxEntriesPerSubject: 2 } })
    for (let attempt = 1; ; attempt++) {
      const sub = `s${attempt}`
      const soon = Date.now() + 300
      // One entry that expires soon and one that lives on: the index outlives the first.
      expect(await a.replay.consume(`${sub}-1`, soon, who(sub))).toBe(true)
      expect(await a.replay.consume(`${sub}-2`, Date.now() + 60_000, who(sub))).toBe(true)
      const refused = await a.replay.consume(`${sub}-3`, soon, who(sub)).catch((e: unknown) => e)
      // A stalled machine may have passed `soon` already: that attempt proves nothing, retry.
      if (Date.now() >= soon && attempt < 5) continue
      expect(refused).toMatchObject({ code: 'ERR_QUOTA_EXCEEDED', retryAfterSeconds: 1 })
      await until(soon)
      expect(await a.replay.consume(`${sub}-3`, Date.now() + 60_000, who(sub))).toBe(true)
      await expect(
        a.replay.consume(`${sub}-4`, Date.now() + 60_000, who(sub)),
      ).rejects.toMatchObject({ code: 'ERR_QUOTA_EXCEEDED' })
      return
    }
  })

  it('refuses a client at its quota over all its subjects, and not another client', async () => {
    const a = await instance(fresh(), { replay: { maxEntriesPerClient: 2 } })
    const at = Date.now() + 60_000
    expect(await a.replay.consume('1', at, who('s1', 'flood'))).toBe(true)
    expect(await a.replay.consume('2', at, who('s2', 'flood'))).toBe(true)
    await expect(a.replay.consume('3', at, who('s3', 'flood'))).rejects.toMatchObject({
      code: 'ERR_QUOTA_EXCEEDED',
    })
    expect(await a.replay.consume('4', at, who('s3', 'other'))).toBe(true)
  })

  it('a store filled by many callers evicts nothing: the oldest proof is still refused', async () => {
    const prefix = fresh()
    const a = await instance(prefix, { replay: { maxEntries: 20, maxEntriesPerSubject: 3 } })
    const at = Date.now() + 60_000
    expect(await a.replay.consume('oldest', at, who('alice'))).toBe(true)
    let full = 0
    for (let i = 0; i < 10; i++) {
      for (let j = 0; j < 3; j++) {
        await a.replay
          .consume(`f${i}-${j}`, at + i * 100 + j, who(`flood-${i}`, `c${i}`))
          .catch((e: unknown) => {
            expect(e).toBeInstanceOf(CallproofError)
            expect((e as CallproofError).code).toBe('ERR_REPLAY_STORE_FULL')
            full++
          })
      }
    }
    expect(full).toBe(11)
    expect(await a.replay.consume('oldest', at, who('alice'))).toBe(false)
    expect(await server.command('PEXPIRETIME', `${prefix}replay:oldest`)).toBe(`:${at}\r\n`)
    expect(await server.command('ZCARD', `${prefix}quota:replay:all`)).toBe(':20\r\n')
  })

  it('validates its quota options', () => {
    for (const [options, name] of [
      [{ replay: { maxEntries: 0 } }, 'replay.maxEntries'],
      [{ replay: { maxEntriesPerSubject: 1.5 } }, 'replay.maxEntriesPerSubject'],
      [{ replay: { maxEntriesPerClient: -1 } }, 'replay.maxEntriesPerClient'],
      [{ sessions: { maxSessions: 0 } }, 'sessions.maxSessions'],
      [{ sessions: { maxSessionsPerSubject: Number.NaN } }, 'sessions.maxSessionsPerSubject'],
      [{ sessions: { maxSessionsPerClient: 0 } }, 'sessions.maxSessionsPerClient'],
      [{ sessions: { idleSeconds: 0 } }, 'sessions.idleSeconds'],
    ] as const) {
      expect(() => createRedisStores({ url: 'redis://127.0.0.1:1', ...options })).toThrow(
        expect.objectContaining({
          code: 'ERR_INVALID_OPTIONS',
          message: expect.stringContaining(name),
        }),
      )
    }
  })
})

describe('session quotas on Redis', () => {
  it('refuses a subject at its quota on every instance with 429, and nobody else', async () => {
    const prefix = fresh()
    const a = await instance(prefix, { sessions: { maxSessionsPerSubject: 2 } })
    const b = await instance(prefix, { sessions: { maxSessionsPerSubject: 2 } })
    await a.sessions.create('m1', who('mallory'), 3600)
    await b.sessions.create('m2', who('mallory', 'other-client'), 3600)
    const err = await a.sessions.create('m3', who('mallory'), 3600).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(QuotaExceededError)
    expect((err as QuotaExceededError).retryAfterSeconds).toBeGreaterThan(1_700)
    expect((err as QuotaExceededError).retryAfterSeconds).toBeLessThanOrEqual(1_800)
    expect(await a.sessions.owner('m3')).toBeUndefined()
    await b.sessions.create('a1', who('alice'), 3600)
    expect(await a.sessions.owner('a1')).toEqual(who('alice'))
    // Ending a session frees its place.
    await b.sessions.delete('m1')
    await a.sessions.create('m3', who('mallory'), 3600)
    await expect(a.sessions.create('m4', who('mallory'), 3600)).rejects.toMatchObject({
      code: 'ERR_QUOTA_EXCEEDED',
    })
  })

  it('refuses a client at its quota when one is set', async () => {
    const a = await instance(fresh(), { sessions: { maxSessionsPerClient: 1 } })
    await a.sessions.create('x1', who('s1', 'dyn'), 3600)
    await expect(a.sessions.create('x2', who('s2', 'dyn'), 3600)).rejects.toMatchObject({
      code: 'ERR_QUOTA_EXCEEDED',
    })
    await a.sessions.create('x3', who('s2', 'cli'), 3600)
  })

  it('ends an idle session, renews one in use, never past its lifetime', async () => {
    const prefix = fresh()
    const a = await instance(prefix, { sessions: { idleSeconds: 60 } })
    const before = Date.now()
    await a.sessions.create('used', who('alice'), 3600)
    const first = Number((await server.command('PEXPIRETIME', `${prefix}session:used`)).slice(1))
    expect(first).toBeGreaterThanOrEqual(before + 60_000)
    expect(first).toBeLessThanOrEqual(Date.now() + 60_000)
    await until(first - 59_990)
    expect(await a.sessions.owner('used')).toEqual(who('alice'))
    const renewed = Number((await server.command('PEXPIRETIME', `${prefix}session:used`)).slice(1))
    expect(renewed).toBeGreaterThan(first)
    // The lifetime bounds the renewal.
    await a.sessions.create('short', who('alice'), 2)
    const end = Number((await server.command('PEXPIRETIME', `${prefix}session:short`)).slice(1))
    expect(await a.sessions.owner('short')).toEqual(who('alice'))
    expect(await server.command('PEXPIRETIME', `${prefix}session:short`)).toBe(`:${end}\r\n`)

    // Idle out for real: an idle time of 1 s, and nothing touches the session.
    const quick = await instance(prefix, { sessions: { idleSeconds: 1, maxSessionsPerSubject: 1 } })
    await quick.sessions.create('idle', who('bob'), 3600)
    const idleEnd = Number((await server.command('PEXPIRETIME', `${prefix}session:idle`)).slice(1))
    await expect(quick.sessions.create('idle-2', who('bob'), 3600)).rejects.toMatchObject({
      code: 'ERR_QUOTA_EXCEEDED',
    })
    await until(idleEnd)
    expect(await quick.sessions.owner('idle')).toBeUndefined()
    // ...which also frees bob's quota.
    await quick.sessions.create('idle-2', who('bob'), 3600)
  })

  it('idle sessions free their owner’s and their client’s quota even behind a backlog', async () => {
    const prefix = fresh()
    const a = await instance(prefix, {
      sessions: { idleSeconds: 3, maxSessionsPerSubject: 1, maxSessionsPerClient: 150 },
    })
    // More expired sessions than one create clears from the total (100): client g's go first,
    // then client f's (at its quota), then bob's, so the last two are left to their own purge.
    const batch = (client: string, n: number) =>
      Promise.all(
        Array.from({ length: n }, (_, i) =>
          a.sessions.create(`${client}${i}`, who(`${client}-${i}`, client), 3600),
        ),
      )
    await batch('g', 100)
    await batch('f', 150)
    await a.sessions.create('bob-1', who('bob', 'h'), 3600)
    await expect(a.sessions.create('x', who('someone', 'f'), 3600)).rejects.toMatchObject({
      code: 'ERR_QUOTA_EXCEEDED',
    })
    const idleEnd = Number((await server.command('PEXPIRETIME', `${prefix}session:bob-1`)).slice(1))
    await until(idleEnd)
    // Bob's own expired session and client f's no longer count.
    await a.sessions.create('bob-2', who('bob', 'f'), 3600)
    expect(await a.sessions.owner('bob-2')).toEqual(who('bob', 'f'))
  })

  it('a full store evicts the biggest holder’s least recently used session, and refuses it', async () => {
    const prefix = fresh()
    const a = await instance(prefix, { sessions: { maxSessions: 6, maxSessionsPerSubject: 5 } })
    await a.sessions.create('alice-1', who('alice'), 3600)
    for (let i = 0; i < 5; i++) await a.sessions.create(`m${i}`, who('mallory'), 3600)
    // A use makes m0 recent: m1 is mallory's least recently used session now.
    expect(await a.sessions.owner('m0')).toEqual(who('mallory'))
    await a.sessions.create('carol-1', who('carol'), 3600)
    expect(await a.sessions.owner('m1')).toBeUndefined()
    expect(await server.command('EXISTS', `${prefix}session:m1`)).toBe(':0\r\n')
    for (const [id, sub] of [
      ['m0', 'mallory'],
      ['alice-1', 'alice'],
      ['carol-1', 'carol'],
    ] as const) {
      expect(await a.sessions.owner(id)).toEqual(who(sub))
    }
    // Mallory (4) holds more than anyone else (1): she is refused, nobody is evicted for her.
    await expect(a.sessions.create('m9', who('mallory'), 3600)).rejects.toMatchObject({
      code: 'ERR_QUOTA_EXCEEDED',
      message: expect.stringMatching(/full/),
    })
    expect(await server.command('ZCARD', `${prefix}quota:sessions:all`)).toBe(':6\r\n')
    await a.sessions.create('alice-2', who('alice'), 3600)
    expect(await server.command('ZSCORE', `${prefix}quota:sessions:holders`, 'mallory')).toBe(
      '$1\r\n3\r\n',
    )
  })
})

async function until(ms: number): Promise<void> {
  while (Date.now() <= ms) {
    await new Promise((resolve) => setTimeout(resolve, ms - Date.now() + 1))
  }
}
