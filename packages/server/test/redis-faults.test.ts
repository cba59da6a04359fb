/**
 * Faults of the Redis stores against a real redis-server: killed, restarted, paused, down at start.
 * The rule under test: every failure is ERR_STORE_UNAVAILABLE within the timeout (never "not seen",
 * never a hang), and the stores recover by themselves when Redis returns.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import { CallproofError } from '@callproof/core'
import { createRedisStores, type RedisStores } from '../src/redis/index.js'
import { startRedisServer, type TestRedisServer } from './support/redis-server.js'

// Real processes and reconnections: more room than the 5 s default on a busy machine.
vi.setConfig({ testTimeout: 20_000 })

const TIMEOUT = 200
/** Scheduling slack on a busy CI machine, on top of the configured timeout. */
const SLACK = 400

const servers: TestRedisServer[] = []
const open: RedisStores[] = []

afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()))
  await Promise.all(servers.splice(0).map((s) => s.stop()))
})

async function server(persistent = false): Promise<TestRedisServer> {
  const s = await startRedisServer({ persistent })
  servers.push(s)
  return s
}

function stores(url: string, timeoutMs = TIMEOUT): RedisStores {
  const s = createRedisStores({ url, prefix: 'fault:', timeoutMs, maxReconnectDelayMs: 100 })
  open.push(s)
  return s
}

/** Runs `op`, expecting ERR_STORE_UNAVAILABLE; returns how long it took. */
async function expectUnavailable(op: () => Promise<unknown>): Promise<number> {
  const start = performance.now()
  let outcome: unknown
  try {
    outcome = { resolved: await op() }
  } catch (error) {
    outcome = error
  }
  const elapsed = performance.now() - start
  expect(outcome).toBeInstanceOf(CallproofError)
  expect((outcome as CallproofError).code).toBe('ERR_STORE_UNAVAILABLE')
  return elapsed
}

async function eventually<T>(op: () => Promise<T>, withinMs = 10_000): Promise<T> {
  const until = Date.now() + withinMs
  for (;;) {
    try {
      return await op()
    } catch (error) {
      if (Date.now() > until) throw error
      await new Promise((r) => setTimeout(r, 50))
    }
  }
}

const alice = { sub: 'alice', clientId: 'cli', jkt: 'jkt-alice' }

describe('Redis killed', () => {
  it('fails every operation closed, within the timeout, and admits nothing', async () => {
    const redis = await server()
    const s = stores(redis.url)
    await s.ready()
    const seen = `jkt:${Math.random()}`
    expect(await s.replay.consume(seen, Date.now() + 60_000)).toBe(true)
    await s.sessions.create('sid-1', alice, 60)

    await redis.kill()
    for (let i = 0; i < 5; i++) {
      const fresh = `jkt:fresh-${i}`
      expect(
        await expectUnavailable(() => s.replay.consume(fresh, Date.now() + 60_000)),
      ).toBeLessThan(TIMEOUT + SLACK)
      expect(
        await expectUnavailable(() => s.replay.consume(seen, Date.now() + 60_000)),
      ).toBeLessThan(TIMEOUT + SLACK)
      expect(await expectUnavailable(() => s.sessions.owner('sid-1'))).toBeLessThan(TIMEOUT + SLACK)
      expect(
        await expectUnavailable(() => s.sessions.create(`sid-${i + 2}`, alice, 60)),
      ).toBeLessThan(TIMEOUT + SLACK)
      expect(await expectUnavailable(() => s.sessions.delete('sid-1'))).toBeLessThan(
        TIMEOUT + SLACK,
      )
    }
    await expect(s.ready({ timeoutMs: 150 })).rejects.toMatchObject({
      code: 'ERR_STORE_UNAVAILABLE',
    })
  })

  it('fails an operation in flight when Redis dies under it', async () => {
    const redis = await server()
    const s = stores(redis.url, 5_000)
    await s.ready()
    // Hold the command on the server so it is in flight when the process dies.
    expect(await redis.command('CLIENT', 'PAUSE', '5000', 'ALL')).toBe('+OK\r\n')
    const pending = expectUnavailable(() => s.replay.consume('jkt:in-flight', Date.now() + 60_000))
    await new Promise((r) => setTimeout(r, 100))
    const killedAt = performance.now()
    await redis.kill()
    await pending
    // Well before the 5 s timeout: the lost connection itself fails the command.
    expect(performance.now() - killedAt).toBeLessThan(1_000)
  })

  it('recovers by itself when Redis returns, with what it persisted', async () => {
    const redis = await server(true)
    const s = stores(redis.url)
    await s.ready()
    const seen = `jkt:${Math.random()}`
    expect(await s.replay.consume(seen, Date.now() + 60_000)).toBe(true)
    await s.sessions.create('sid-persisted', alice, 60)

    await redis.kill()
    await expectUnavailable(() => s.replay.consume('jkt:during', Date.now() + 60_000))
    await redis.start()

    // Same stores object, no manual reconnect.
    expect(await eventually(() => s.replay.consume('jkt:after', Date.now() + 60_000))).toBe(true)
    // appendfsync always: the crash lost nothing that was acknowledged.
    expect(await s.replay.consume(seen, Date.now() + 60_000)).toBe(false)
    expect(await s.sessions.owner('sid-persisted')).toEqual(alice)
  })
})

describe('Redis slow', () => {
  it('fails closed when a command takes longer than the timeout, then works again', async () => {
    const redis = await server()
    const s = stores(redis.url)
    await s.ready()
    expect(await redis.command('CLIENT', 'PAUSE', '1000', 'ALL')).toBe('+OK\r\n')
    const late = `jkt:late-${Math.random()}`
    const elapsed = await expectUnavailable(() => s.replay.consume(late, Date.now() + 60_000))
    expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT - 5)
    expect(elapsed).toBeLessThan(TIMEOUT + SLACK)
    await expectUnavailable(() => s.sessions.owner('any-session'))

    // After the pause, the stores serve again on the same connection...
    expect(
      await eventually(() => s.replay.consume(`jkt:next-${Math.random()}`, Date.now() + 60_000)),
    ).toBe(true)
    // ...and the command that timed out may have landed late: its key now counts as used, which
    // refuses a retry of that exact proof (the client makes a new one) rather than admitting it.
    expect(await s.replay.consume(late, Date.now() + 60_000)).toBe(false)
  })

  it('uses a default timeout of 500 ms', async () => {
    const redis = await server()
    const s = createRedisStores({ url: redis.url })
    open.push(s)
    await s.ready()
    expect(await redis.command('CLIENT', 'PAUSE', '1500', 'ALL')).toBe('+OK\r\n')
    const elapsed = await expectUnavailable(() => s.replay.consume('jkt:x', Date.now() + 60_000))
    expect(elapsed).toBeGreaterThanOrEqual(495)
    expect(elapsed).toBeLessThan(500 + SLACK)
  })
})

describe('Redis down at start', () => {
  it('fails closed until Redis comes up, then serves without a restart', async () => {
    const redis = await server()
    await redis.kill()
    const errors: Error[] = []
    const s = createRedisStores({
      url: redis.url,
      prefix: 'fault:',
      timeoutMs: TIMEOUT,
      maxReconnectDelayMs: 100,
      onError: (e) => errors.push(e),
    })
    open.push(s)
    expect(
      await expectUnavailable(() => s.replay.consume('jkt:early', Date.now() + 60_000)),
    ).toBeLessThan(TIMEOUT + SLACK)
    await expect(s.ready({ timeoutMs: 200 })).rejects.toBeInstanceOf(CallproofError)
    await redis.start()
    await s.ready({ timeoutMs: 10_000 })
    expect(await s.replay.consume('jkt:early', Date.now() + 60_000)).toBe(true)
    expect(errors.length).toBeGreaterThan(0) // connection errors were reported, not swallowed
  })

  it('close() does not hang on a Redis that stopped answering', async () => {
    const redis = await server()
    const s = stores(redis.url)
    await s.ready()
    expect(await redis.command('CLIENT', 'PAUSE', '3000', 'ALL')).toBe('+OK\r\n')
    const pending = s.replay.consume('jkt:stuck', Date.now() + 60_000).catch((e: unknown) => e)
    const start = performance.now()
    await s.close()
    expect(performance.now() - start).toBeLessThan(TIMEOUT + SLACK)
    expect(await pending).toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' })
  })
})

/**
 * A TCP relay in front of Redis that can turn every existing connection into a black hole (bytes
 * accepted, nothing delivered, no reset) and send new connections elsewhere: a hard failover.
 */
async function relay(targetPort: number) {
  let target = targetPort
  const pairs: Array<{ dead: boolean; sockets: Socket[] }> = []
  const server: Server = createServer((downstream) => {
    const upstream = createConnection({ host: '127.0.0.1', port: target })
    const pair = { dead: false, sockets: [downstream, upstream] }
    pairs.push(pair)
    downstream.on('data', (d) => pair.dead || upstream.write(d))
    upstream.on('data', (d) => pair.dead || downstream.write(d))
    for (const socket of pair.sockets) {
      socket.on('error', () => pair.sockets.forEach((s) => s.destroy()))
      socket.on('close', () => pair.dead || pair.sockets.forEach((s) => s.destroy()))
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `redis://127.0.0.1:${(server.address() as AddressInfo).port}`,
    failover(to: number) {
      target = to
      for (const pair of pairs) pair.dead = true
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const pair of pairs) pair.sockets.forEach((s) => s.destroy())
        server.close(() => resolve())
      }),
  }
}

describe('Redis failover behind a half-open connection', () => {
  it('fails closed while nothing answers, then reconnects to the new address by itself', async () => {
    const primary = await server()
    const replica = await server()
    const proxy = await relay(primary.port)
    try {
      const s = createRedisStores({
        url: proxy.url,
        prefix: 'fault:',
        timeoutMs: TIMEOUT,
        stallResetMs: 600,
        maxReconnectDelayMs: 100,
      })
      open.push(s)
      await s.ready()
      expect(await s.replay.consume('jkt:before', Date.now() + 60_000)).toBe(true)

      proxy.failover(replica.port)
      // The old connection still looks open: commands time out (closed, not admitted)...
      expect(
        await expectUnavailable(() => s.replay.consume('jkt:during', Date.now() + 60_000)),
      ).toBeLessThan(TIMEOUT + SLACK)
      // ...until the stall reset opens a new connection, which reaches the new primary.
      const recovered = await eventually(
        () => s.replay.consume('jkt:after', Date.now() + 60_000),
        10_000,
      )
      expect(recovered).toBe(true)
      expect(await replica.command('EXISTS', 'fault:replay:jkt:after')).toBe(':1\r\n')
    } finally {
      await proxy.close()
    }
  })
})
