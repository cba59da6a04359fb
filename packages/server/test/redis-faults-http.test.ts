/**
 * Redis faults seen from outside, through createCallproof on real HTTP with a real redis-server
 * (append-only, fsync always): killed, then paused (slow). What must hold (docs/operations.md,
 * "Faults"): every request that needs Redis is answered 503 with `Retry-After` and leaves a
 * `refused` audit event with reason ERR_STORE_UNAVAILABLE; no tool runs and nothing is audited as
 * allowed while Redis cannot answer; the instance recovers by itself, and a proof used before the
 * outage is still refused after it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Hono } from 'hono'
import { createCallproof, createToolRegistry } from '../src/index.js'
import type { AuditEvent, CallproofEnv } from '../src/index.js'
import { createRedisStores, type RedisStores } from '../src/redis/index.js'
import { startRedisServer, type TestRedisServer } from './support/redis-server.js'
import { clientKey, startIssuer } from './helpers/issuer.js'
import type { ClientKey, TestIssuer } from './helpers/issuer.js'
import { provenRequest, toolCall } from './helpers/client.js'
import { listen } from './helpers/server.js'
import type { Running } from './helpers/server.js'

const TIMEOUT = 200
/** How long the slow test pauses Redis: far beyond TIMEOUT plus the time to sign and send. */
const PAUSE = 5_000

let redis: TestRedisServer
let issuer: TestIssuer
let alice: ClientKey
let stores: RedisStores
let run: Running
let resource = ''
let runs = 0
const events: AuditEvent[] = []

beforeAll(async () => {
  redis = await startRedisServer({ persistent: true })
  issuer = await startIssuer()
  alice = await clientKey()
  stores = createRedisStores({ url: redis.url, timeoutMs: TIMEOUT, maxReconnectDelayMs: 100 })
  await stores.ready()
  run = await listen((origin) => {
    resource = `${origin}/mcp`
    const tools = createToolRegistry({ name: 'redis-faults-http', version: '0.0.0' })
    tools.register('whoami', { policy: { scopes: ['drive:read'] } }, () => {
      runs++
      return { content: [{ type: 'text', text: 'ok' }] }
    })
    const callproof = createCallproof({
      resource,
      issuers: issuer.issuer,
      tools,
      replay: stores.replay,
      audit: { write: (event) => void events.push(event) },
    })
    const app = new Hono<CallproofEnv>()
    callproof.mount(app)
    return app
  })
})

afterAll(async () => {
  await run?.close()
  await stores?.close()
  await issuer?.close()
  await redis?.stop()
})

async function proven(): Promise<RequestInit> {
  const token = await issuer.mint({ aud: resource, cnf: { jkt: alice.jkt } })
  return provenRequest(resource, { token, key: alice, message: toolCall('whoami') })
}

/** Sends `init`; returns the answer, how long it took, and the audit events it produced. */
async function send(init: RequestInit) {
  const before = events.length
  const started = performance.now()
  const response = await fetch(resource, init)
  await response.arrayBuffer()
  return { response, ms: performance.now() - started, audited: events.slice(before) }
}

/** Expects the fail-closed answer: 503, `Retry-After`, one refused audit event, no tool run. */
async function expectFailClosed(init: RequestInit) {
  const runsBefore = runs
  const { response, ms, audited } = await send(init)
  expect(response.status).toBe(503)
  expect(response.headers.get('retry-after')).toMatch(/^[1-9]\d*$/)
  // Bounded by the store's timeout, not by how long Redis stays away (a pause of PAUSE ms, or
  // until it is restarted), with room for a loaded machine.
  expect(ms).toBeLessThan(TIMEOUT + 3_000)
  expect(audited).toEqual([
    expect.objectContaining({ decision: 'refused', reason: 'ERR_STORE_UNAVAILABLE', status: 503 }),
  ])
  expect(runs).toBe(runsBefore)
}

async function recovered(): Promise<void> {
  const deadline = Date.now() + 15_000
  for (;;) {
    const { response } = await send(await proven())
    if (response.status === 200) return
    expect(response.status).toBe(503)
    if (Date.now() > deadline) throw new Error('the instance did not recover within 15 s')
    await new Promise((r) => setTimeout(r, 50))
  }
}

describe('Redis faults through the middleware', () => {
  it('Redis killed: 503 + Retry-After + an audit event, nothing admitted; recovers by itself and still refuses an old proof', async () => {
    const used = await proven()
    expect((await send(used)).response.status).toBe(200)
    expect(runs).toBe(1)

    await redis.kill()
    try {
      for (let i = 0; i < 3; i++) await expectFailClosed(await proven())
      // The used proof, while Redis cannot say it was used: refused too, never admitted.
      await expectFailClosed(used)
    } finally {
      await redis.start()
    }
    expect(runs).toBe(1)
    expect(events.filter((e) => e.decision === 'allowed')).toHaveLength(1)

    // Same process, same stores object: no restart.
    await recovered()
    expect(runs).toBe(2)
    // Redis came back with its append-only file: the proof used before the crash stays used.
    const replayed = await send(used)
    expect(replayed.response.status).toBe(401)
    expect(replayed.audited).toEqual([
      expect.objectContaining({ decision: 'refused', reason: 'ERR_REPLAY' }),
    ])
    expect(runs).toBe(2)
  })

  it('Redis slow (paused longer than the timeout): 503 + Retry-After + an audit event, then works again', async () => {
    await recovered()
    const runsBefore = runs
    expect(await redis.command('CLIENT', 'PAUSE', String(PAUSE), 'ALL')).toBe('+OK\r\n')
    const pausedAt = Date.now()
    await expectFailClosed(await proven())
    // The pause was long enough that the refusal above was the timeout, not a late answer.
    expect(Date.now() - pausedAt).toBeLessThan(PAUSE)
    expect(runs).toBe(runsBefore)
    await recovered()
    expect(runs).toBe(runsBefore + 1)
  })
})
