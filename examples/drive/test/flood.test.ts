/**
 * Issue 10, finding 1 (session flood), against the real drive over HTTP: one caller fills its
 * quota (of sessions, or of proofs in the replay window) and is answered 429 with Retry-After,
 * while every other caller still opens sessions and calls tools. Then a store full of one
 * flooder's sessions: the flooder is refused, everyone else gets in. The same suite runs on the
 * memory stores and on the Redis stores (a real redis-server); quotas are small so it is quick.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { MemoryReplayStore } from '@callproof/core'
import type { ReplayStore } from '@callproof/core'
import { MemorySessionStore } from '@callproof/server'
import type { SessionStore } from '@callproof/server'
import { createRedisStores } from '@callproof/server/redis'
import type { RedisStores } from '@callproof/server/redis'
import {
  startRedisServer,
  type TestRedisServer,
} from '../../../packages/server/test/support/redis-server.js'
import { startFixture } from './support/drive.js'
import type { Fixture } from './support/drive.js'
import type { HttpAnswer } from './support/http.js'
import { argsDigest } from './support/proof.js'
import { rpc, toolText } from './support/mcp.js'
import type { McpCaller } from './support/mcp.js'

interface Quotas {
  maxSessions?: number
  maxSessionsPerSubject?: number
  maxEntriesPerSubject?: number
}
type Stores = { replay: ReplayStore; sessions: SessionStore }

let redisServer: TestRedisServer | undefined
const redisStores: RedisStores[] = []
let unique = 0

const backends: Array<[string, (quotas: Quotas) => Promise<Stores>]> = [
  [
    'memory',
    (q) =>
      Promise.resolve({
        replay: new MemoryReplayStore({
          ...(q.maxEntriesPerSubject !== undefined && {
            maxEntriesPerSubject: q.maxEntriesPerSubject,
          }),
        }),
        sessions: new MemorySessionStore({
          ...(q.maxSessions !== undefined && { maxSessions: q.maxSessions }),
          ...(q.maxSessionsPerSubject !== undefined && {
            maxSessionsPerSubject: q.maxSessionsPerSubject,
          }),
        }),
      }),
  ],
  [
    'redis',
    async (q) => {
      redisServer ??= await startRedisServer()
      const stores = createRedisStores({
        url: redisServer.url,
        prefix: `flood-${++unique}:`,
        timeoutMs: 2000,
        replay: {
          ...(q.maxEntriesPerSubject !== undefined && {
            maxEntriesPerSubject: q.maxEntriesPerSubject,
          }),
        },
        sessions: {
          ...(q.maxSessions !== undefined && { maxSessions: q.maxSessions }),
          ...(q.maxSessionsPerSubject !== undefined && {
            maxSessionsPerSubject: q.maxSessionsPerSubject,
          }),
        },
      })
      redisStores.push(stores)
      await stores.ready()
      return stores
    },
  ],
]

/** The quota answer: 429, its code, a Retry-After in whole seconds, and no session. */
function expectQuota(answer: HttpAnswer, maxRetryAfter: number): void {
  const where = `${answer.status} ${answer.text.slice(0, 300)}`
  expect(answer.status, where).toBe(429)
  expect(answer.json, where).toMatchObject({
    error: 'too_many_requests',
    code: 'ERR_QUOTA_EXCEEDED',
  })
  const retryAfter = answer.headers.get('retry-after')
  expect(retryAfter, where).toMatch(/^[1-9]\d*$/)
  expect(Number(retryAfter)).toBeLessThanOrEqual(maxRetryAfter)
  expect(answer.headers.get('mcp-session-id')).toBeNull()
  expect(answer.messages.some((m) => 'result' in m)).toBe(false)
}

/** A legitimate caller opens a session and calls a tool on it. */
async function expectServed(fx: Fixture, sub: string): Promise<McpCaller> {
  const caller = await fx.caller({ sub })
  const init = await caller.connect()
  expect(init.status, init.text.slice(0, 300)).toBe(200)
  expect(caller.sessionId).toBeDefined()
  const files = await caller.callTool('list_files', {})
  expect(files.status, files.text.slice(0, 300)).toBe(200)
  expect(Array.isArray(JSON.parse(toolText(files)))).toBe(true)
  return caller
}

afterEach(async () => {
  await Promise.all(redisStores.splice(0).map((s) => s.close()))
})

afterAll(async () => {
  await redisServer?.stop()
})

describe.each(backends)('session and replay flood (%s stores)', (_name, makeStores) => {
  let fx: Fixture | undefined
  afterEach(async () => {
    await fx?.close()
    fx = undefined
  })

  it('a caller with no scopes fills its session quota: 429 for it, everyone else is served', async () => {
    fx = await startFixture({ stores: await makeStores({ maxSessionsPerSubject: 3 }) })
    const mallory: McpCaller[] = []
    for (let i = 0; i < 3; i++) {
      // A fresh key (and token) for each: the quota is the subject's, not one key's.
      const c = await fx.caller({ sub: 'mallory', scope: null })
      expect((await c.connect()).status).toBe(200)
      mallory.push(c)
    }
    const extra = await fx.caller({ sub: 'mallory', scope: null })
    expectQuota(await extra.connect(), 30 * 60)
    // Everyone else still opens sessions and calls tools.
    await expectServed(fx, 'alice')
    await expectServed(fx, 'alice')
    await expectServed(fx, 'bob')
    // Mallory's own sessions still work, and ending one makes room for one more.
    const list = await mallory[0]!.send(rpc('tools/list'))
    expect(list.status).toBe(200)
    expect((await mallory[0]!.send(undefined, { method: 'DELETE' })).status).toBe(200)
    expect((await extra.connect()).status).toBe(200)
    expectQuota(await (await fx.caller({ sub: 'mallory', scope: null })).connect(), 30 * 60)
  })

  it('a store full of one flooder’s sessions refuses the flooder and lets everyone else in', async () => {
    fx = await startFixture({
      stores: await makeStores({ maxSessions: 5, maxSessionsPerSubject: 100 }),
    })
    const mallory: McpCaller[] = []
    for (let i = 0; i < 5; i++) {
      const c = await fx.caller({ sub: 'mallory', scope: null })
      expect((await c.connect()).status).toBe(200)
      mallory.push(c)
    }
    // Full, and mallory holds every session: she is refused, not somebody else.
    const more = await (await fx.caller({ sub: 'mallory', scope: null })).connect()
    expectQuota(more, 30 * 60)
    expect(more.text).toMatch(/full/)
    // Alice and bob get in; each evicts mallory's least recently used session.
    await expectServed(fx, 'alice')
    await expectServed(fx, 'bob')
    expect((await mallory[0]!.send(rpc('tools/list'))).status).toBe(404)
    expect((await mallory[1]!.send(rpc('tools/list'))).status).toBe(404)
    expect((await mallory[2]!.send(rpc('tools/list'))).status).toBe(200)
  })

  it('a caller at its quota of proofs in the replay window gets 429; others are served', async () => {
    fx = await startFixture({ stores: await makeStores({ maxEntriesPerSubject: 4 }) })
    const mallory = await fx.caller({ sub: 'mallory', scope: null })
    // initialize and notifications/initialized: two proofs; two tools/list: two more.
    expect((await mallory.connect()).status).toBe(200)
    for (let i = 0; i < 2; i++) expect((await mallory.send(rpc('tools/list'))).status).toBe(200)
    expectQuota(await mallory.send(rpc('tools/list')), 65)
    // Another key of the same subject does not escape the quota.
    expectQuota(await (await fx.caller({ sub: 'mallory', scope: null })).connect(), 65)
    await expectServed(fx, 'alice')
  })

  it('a one-time approval counts against its caller’s replay quota too', async () => {
    fx = await startFixture({ stores: await makeStores({ maxEntriesPerSubject: 5 }) })
    const carol = await fx.caller({ sub: 'carol' })
    expect((await carol.connect()).status).toBe(200) // proofs 1 and 2
    const args = { path: 'README.md', with: 'bob' }
    const approval = await fx.token(carol.key, {
      sub: 'carol',
      authorizationDetails: [
        {
          type: 'mcp_tool_call',
          resource: fx.resource,
          tool: 'share_file',
          args: await argsDigest(args),
        },
      ],
    })
    // Proof 3 and the approval: 4 entries.
    const shared = await carol.callTool('share_file', args, { token: approval })
    expect(shared.status, shared.text.slice(0, 300)).toBe(200)
    expect((await carol.send(rpc('tools/list'))).status).toBe(200) // 5
    expectQuota(await carol.send(rpc('tools/list')), 65)
    await expectServed(fx, 'alice')
  })
})
