/**
 * The Redis stores against a real redis-server: atomic consume-once across instances, exact expiry,
 * one-time approvals, sessions shared between instances, and what a restarted instance remembers.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { createClient } from 'redis'
import { CallproofError } from '@callproof/core'
import { createRedisStores, type RedisStores } from '../src/redis/index.js'
import { startRedisServer, type TestRedisServer } from './support/redis-server.js'

// Real processes and reconnections: more room than the 5 s default on a busy machine.
vi.setConfig({ testTimeout: 20_000 })

let server: TestRedisServer
const open: RedisStores[] = []
let unique = 0

/** A fresh store instance (its own client and connection), as one server instance would have. */
async function instance(prefix = 'test:'): Promise<RedisStores> {
  const stores = createRedisStores({ url: server.url, prefix, timeoutMs: 1000 })
  open.push(stores)
  await stores.ready()
  return stores
}

function key(name: string): string {
  return `${name}-${++unique}-${Math.random().toString(36).slice(2)}`
}

const alice = { sub: 'alice', clientId: 'cli', jkt: 'jkt-alice' }

beforeAll(async () => {
  server = await startRedisServer()
})

afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()))
})

afterAll(async () => {
  await server?.stop()
})

describe('replay store on Redis', () => {
  it('consumes a key once across two instances', async () => {
    const a = await instance()
    const b = await instance()
    const k = key('jkt:jti')
    const expiresAt = Date.now() + 60_000
    expect(await a.replay.consume(k, expiresAt)).toBe(true)
    expect(await b.replay.consume(k, expiresAt)).toBe(false)
    expect(await a.replay.consume(k, expiresAt)).toBe(false)
  })

  it('admits exactly one of many concurrent consumes of the same key from two instances', async () => {
    const a = await instance()
    const b = await instance()
    const k = key('race')
    const expiresAt = Date.now() + 60_000
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) => (i % 2 ? a : b).replay.consume(k, expiresAt)),
    )
    expect(results.filter(Boolean)).toHaveLength(1)
  })

  it('expires an entry exactly at expiresAt: kept before, gone after', async () => {
    const a = await instance()
    // "Kept before" is shown only by a consume that Redis answered before expiresAt. A busy machine
    // may stall past a short expiry between two commands; that attempt proves nothing and the test
    // starts again with a fresh key (a stall can only cause a retry, never a pass).
    for (let attempt = 1; ; attempt++) {
      const k = key('expiry')
      const expiresAt = Date.now() + 1000.2
      expect(await a.replay.consume(k, expiresAt)).toBe(true)
      // Redis holds the absolute expiry we asked for, rounded up, never down: this is what makes
      // the expiry exact, whatever the timing of the rest.
      expect(await server.command('PEXPIRETIME', `test:replay:${k}`)).toBe(
        `:${Math.ceil(expiresAt)}\r\n`,
      )
      const again = await a.replay.consume(k, expiresAt)
      if (Date.now() >= expiresAt && attempt < 5) continue
      expect(again).toBe(false)
      // Gone after: once this clock (the one Redis reads) is past the expiry, Redis treats the key
      // as expired on the next command; waiting longer cannot change that.
      await until(Math.ceil(expiresAt))
      expect(await server.command('EXISTS', `test:replay:${k}`)).toBe(':0\r\n')
      expect(await a.replay.consume(k, Date.now() + 60_000)).toBe(true)
      return
    }
  })

  it('refuses on another instance an approval consumed on one', async () => {
    const a = await instance()
    const b = await instance()
    const approval = `approval:${key('token-jti')}`
    const expiresAt = Date.now() + 300_000
    expect(await a.replay.consume(approval, expiresAt)).toBe(true)
    expect(await b.replay.consume(approval, expiresAt)).toBe(false)
  })

  it('remembers what was consumed after the instance restarts (a new connection)', async () => {
    const first = await instance()
    const k = key('restart')
    const s = key('session')
    expect(await first.replay.consume(k, Date.now() + 60_000)).toBe(true)
    await first.sessions.create(s, alice, 60)
    await first.close()
    await expect(first.replay.consume(k, Date.now() + 60_000)).rejects.toMatchObject({
      code: 'ERR_STORE_UNAVAILABLE',
    })
    const second = await instance()
    expect(await second.replay.consume(k, Date.now() + 60_000)).toBe(false)
    expect(await second.sessions.owner(s)).toEqual(alice)
  })

  it('keeps prefixes apart', async () => {
    const a = await instance('one:')
    const b = await instance('two:')
    const k = key('prefixed')
    expect(await a.replay.consume(k, Date.now() + 60_000)).toBe(true)
    expect(await b.replay.consume(k, Date.now() + 60_000)).toBe(true)
    expect(await a.replay.consume(k, Date.now() + 60_000)).toBe(false)
  })

  it('rejects a nonsensical expiry instead of recording it wrongly', async () => {
    const a = await instance()
    for (const bad of [Number.NaN, Infinity, -1, 0]) {
      await expect(a.replay.consume(key('bad'), bad)).rejects.toThrow(TypeError)
    }
    await expect(a.replay.consume('', Date.now() + 1000)).rejects.toThrow(TypeError)
  })
})

describe('session store on Redis', () => {
  it('shares a session between instances and ends it everywhere', async () => {
    const a = await instance()
    const b = await instance()
    const id = key('sid')
    await a.sessions.create(id, alice, 3600)
    expect(await b.sessions.owner(id)).toEqual(alice)
    await b.sessions.delete(id)
    expect(await a.sessions.owner(id)).toBeUndefined()
    await a.sessions.delete(id) // deleting an unknown session is not an error
  })

  it('expires a session after its ttl', async () => {
    const a = await instance()
    // As above: an attempt whose owner() Redis answered only after the expiry proves nothing about
    // "alive before" and is made again with a fresh session.
    for (let attempt = 1; ; attempt++) {
      const id = key('ttl')
      const before = Date.now()
      await a.sessions.create(id, alice, 1)
      const expireAt = Number((await server.command('PEXPIRETIME', `test:session:${id}`)).slice(1))
      expect(expireAt).toBeGreaterThanOrEqual(before + 1000)
      expect(expireAt).toBeLessThanOrEqual(Date.now() + 1000)
      const owner = await a.sessions.owner(id)
      if (Date.now() >= expireAt && attempt < 5) continue
      expect(owner).toEqual(alice)
      await until(expireAt)
      expect(await a.sessions.owner(id)).toBeUndefined()
      return
    }
  })

  it('never overwrites an existing session with another owner', async () => {
    const a = await instance()
    const b = await instance()
    const id = key('taken')
    await a.sessions.create(id, alice, 60)
    await expect(b.sessions.create(id, { ...alice, sub: 'mallory' }, 60)).rejects.toThrow(
      /already exists/,
    )
    expect(await a.sessions.owner(id)).toEqual(alice)
  })

  it('answers "no such session" for ids it could never have issued, without asking Redis', async () => {
    const a = await instance()
    for (const id of ['', 'has space', 'x'.repeat(257), 'tab\there', 'ümlaut']) {
      expect(await a.sessions.owner(id)).toBeUndefined()
      await a.sessions.delete(id)
      await expect(a.sessions.create(id, alice, 60)).rejects.toThrow(TypeError)
    }
  })

  it('refuses (does not guess) when a session entry is not one it wrote', async () => {
    const a = await instance()
    const id = key('corrupt')
    expect(await server.command('SET', `test:session:${id}`, '{"sub":"alice"}')).toBe('+OK\r\n')
    await expect(a.sessions.owner(id)).rejects.toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' })
    expect(await server.command('SET', `test:session:${id}`, 'not json')).toBe('+OK\r\n')
    await expect(a.sessions.owner(id)).rejects.toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' })
  })
})

describe('createRedisStores options', () => {
  it('validates options at creation', () => {
    const cases: Array<[unknown, RegExp]> = [
      [undefined, /options object/],
      [{}, /exactly one of/],
      [{ url: 'redis://x', client: createClient() }, /exactly one of/],
      [{ url: 'http://127.0.0.1:6379' }, /redis:\/\//],
      [{ client: {} }, /sendCommand/],
      [{ url: 'redis://x', timeoutMs: 0 }, /timeoutMs/],
      [{ url: 'redis://x', timeoutMs: 1.5 }, /timeoutMs/],
      [{ url: 'redis://x', connectTimeoutMs: -1 }, /connectTimeoutMs/],
      [{ url: 'redis://x', prefix: 5 }, /prefix/],
      [{ url: 'redis://x', onError: 'log' }, /onError/],
    ]
    for (const [options, message] of cases) {
      let error: unknown
      try {
        createRedisStores(options as never)
      } catch (e) {
        error = e
      }
      expect(error, JSON.stringify(options)).toBeInstanceOf(CallproofError)
      expect((error as CallproofError).code).toBe('ERR_INVALID_OPTIONS')
      expect((error as Error).message).toMatch(message)
    }
  })

  it('never echoes a url (it may hold a password)', () => {
    expect(() => createRedisStores({ url: 'http://user:s3cret@host' })).toThrow(CallproofError)
    try {
      createRedisStores({ url: 'http://user:s3cret@host' })
    } catch (e) {
      expect((e as Error).message).not.toContain('s3cret')
    }
  })

  it('works on a client the caller owns, and leaves it open on close()', async () => {
    const client = createClient({ url: server.url, disableOfflineQueue: true })
    client.on('error', () => {})
    await client.connect()
    try {
      const a = createRedisStores({ client, prefix: 'test:' })
      const b = await instance()
      const k = key('own-client')
      expect(await a.replay.consume(k, Date.now() + 60_000)).toBe(true)
      expect(await b.replay.consume(k, Date.now() + 60_000)).toBe(false)
      await a.close()
      expect(client.isOpen).toBe(true)
      await expect(a.replay.consume(key('after-close'), Date.now() + 1000)).rejects.toMatchObject({
        code: 'ERR_STORE_UNAVAILABLE',
      })
    } finally {
      client.destroy()
    }
  })

  it('ready() refuses a Redis that may evict unexpired keys', async () => {
    expect(await server.command('CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lru')).toBe('+OK\r\n')
    try {
      const stores = createRedisStores({ url: server.url })
      open.push(stores)
      await expect(stores.ready()).rejects.toMatchObject({
        code: 'ERR_INVALID_OPTIONS',
        message: expect.stringMatching(/allkeys-lru.*noeviction/),
      })
    } finally {
      await server.command('CONFIG', 'SET', 'maxmemory-policy', 'noeviction')
    }
    const stores = createRedisStores({ url: server.url })
    open.push(stores)
    await expect(stores.ready()).resolves.toBeUndefined()
  })
})

/**
 * Resolves once `Date.now()` is past `ms`. Redis (on this machine, same clock) drops a key once its
 * clock is past the key's expiry, so a command sent after this finds the key gone.
 */
async function until(ms: number): Promise<void> {
  while (Date.now() <= ms) {
    await new Promise((resolve) => setTimeout(resolve, ms - Date.now() + 1))
  }
}
