/**
 * The SDK v1 seam reuses `McpServer`s across requests and callers (sdk/v1.ts). These tests hold
 * it to its three rules over real HTTP, the real SDK server and real tokens and proofs: one
 * request per server at a time (so JSON-RPC ids of different callers never meet), `tools/list`
 * answered for this request's caller, and no pooled server that ever ran `initialize`.
 *
 * Server construction is counted with a spy on `McpServer.prototype.registerTool` that calls
 * through (nothing is faked): every built server registers every tool once.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { Hono } from 'hono'
import { z } from 'zod'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { callerOf, createCallproof, createToolRegistry } from '../src/index.js'
import type { ToolRegistry } from '../src/index.js'
import { DirectTransport } from '../src/sdk/direct.js'
import { clientKey, startIssuer } from './helpers/issuer.js'
import type { ClientKey, TestIssuer } from './helpers/issuer.js'
import { provenRequest, rpc, toolCall } from './helpers/client.js'
import { listen } from './helpers/server.js'
import type { Running } from './helpers/server.js'

let issuer: TestIssuer
let alice: ClientKey
let bob: ClientKey

beforeAll(async () => {
  issuer = await startIssuer()
  alice = await clientKey()
  bob = await clientKey()
})
afterAll(async () => {
  await issuer.close()
})
afterEach(() => {
  vi.restoreAllMocks()
})

function registry(): ToolRegistry {
  const tools = createToolRegistry({ name: 'seam', version: '0.0.0' })
  tools.register('whoami', { policy: { public: true } }, async (extra) => {
    // Yield to the event loop so that concurrent requests really overlap inside the SDK.
    await new Promise((resolve) => setImmediate(resolve))
    return { content: [{ type: 'text', text: callerOf(extra).sub }] }
  })
  tools.register(
    'read',
    { inputSchema: { path: z.string() }, policy: { scopes: ['drive:read'] } },
    ({ path }) => ({ content: [{ type: 'text', text: `content of ${path}` }] }),
  )
  tools.register('bob_only', { policy: { callers: { subjects: ['bob'] } } }, () => ({
    content: [{ type: 'text', text: 'hi bob' }],
  }))
  return tools
}

interface World {
  run: Running
  resource: string
  tools: ToolRegistry
  send(key: ClientKey, message: unknown, sub?: string): Promise<Response>
}

async function world(): Promise<World> {
  const tools = registry()
  let resource = ''
  const run = await listen((origin) => {
    resource = `${origin}/mcp`
    const callproof = createCallproof({ resource, issuers: issuer.issuer, tools })
    const app = new Hono()
    callproof.mount(app)
    return app
  })
  return {
    run,
    resource,
    tools,
    async send(key, message, sub = key === bob ? 'bob' : 'alice') {
      const token = await issuer.mint({ aud: resource, sub, cnf: { jkt: key.jkt } })
      return fetch(resource, await provenRequest(resource, { token, key, message }))
    },
  }
}

const textOf = async (response: Response) => {
  const body = (await response.json()) as { result?: { content?: { text?: string }[] } }
  return body.result?.content?.[0]?.text
}

describe('the SDK v1 seam', () => {
  it('reuses one server for calls one after another, instead of building one per request', async () => {
    const w = await world()
    try {
      const registered = vi.spyOn(McpServer.prototype, 'registerTool')
      for (let i = 0; i < 10; i++) {
        const response = await w.send(alice, toolCall('read', { path: `f${i}` }))
        expect(await textOf(response)).toBe(`content of f${i}`)
      }
      // One server with the registry's three tools, built once, reused nine times.
      expect(registered).toHaveBeenCalledTimes(3)
    } finally {
      await w.run.close()
    }
  })

  it('answers each of two callers in flight with the same JSON-RPC id with its own result', async () => {
    const w = await world()
    try {
      const same = (id: number) => ({ ...toolCall('whoami'), id })
      const answers = await Promise.all(
        Array.from({ length: 24 }, (_, i) => {
          const key = i % 2 === 0 ? alice : bob
          return w
            .send(key, same(7))
            .then(async (r) => [key === bob ? 'bob' : 'alice', await textOf(r)])
        }),
      )
      for (const [sender, answer] of answers) expect(answer).toBe(sender)
    } finally {
      await w.run.close()
    }
  })

  it("lists each caller's own tools on shared servers", async () => {
    const w = await world()
    try {
      const names = async (key: ClientKey) => {
        const response = await w.send(key, rpc('tools/list'))
        const body = (await response.json()) as {
          result: { tools: { name: string; _meta?: Record<string, unknown> }[] }
        }
        return body.result.tools
      }
      const [a, b] = await Promise.all([names(alice), names(bob)])
      expect(a.map((t) => t.name)).toEqual(['whoami', 'read'])
      expect(b.map((t) => t.name)).toEqual(['whoami', 'read', 'bob_only'])
      expect(a[1]?._meta?.['callproof/policy']).toEqual({ scopes: ['drive:read'], stepUp: false })
      // The SDK still describes the tools (JSON Schema from the zod shape).
      expect(a[1]).toMatchObject({ inputSchema: { type: 'object', required: ['path'] } })
      // A tool the caller can never be granted is refused before the SDK, like an unknown one.
      const refused = await w.send(alice, toolCall('bob_only'))
      expect(refused.status).toBe(403)
    } finally {
      await w.run.close()
    }
  })

  it('never reuses a server that ran initialize (it holds that client’s capabilities)', async () => {
    const w = await world()
    try {
      // Which server each request ran on, in order (requests are sent one after another): a
      // server connected for one request (initialize), or the pooled server whose own transport
      // ran it.
      const used: McpServer[] = []
      const serverOf = new Map<object, McpServer>()
      const connect = McpServer.prototype.connect
      vi.spyOn(McpServer.prototype, 'connect').mockImplementation(function (this: McpServer, t) {
        serverOf.set(t, this)
        if (!(t instanceof DirectTransport)) used.push(this)
        return connect.call(this, t)
      })
      const run = DirectTransport.prototype.run
      vi.spyOn(DirectTransport.prototype, 'run').mockImplementation(function (
        this: DirectTransport,
        ...args
      ) {
        used.push(serverOf.get(this)!)
        return run.apply(this, args)
      })
      expect((await w.send(alice, toolCall('whoami'))).status).toBe(200)
      const initialize = rpc('initialize', {
        protocolVersion: '2025-06-18',
        capabilities: { elicitation: {} },
        clientInfo: { name: 'alice-app', version: '1' },
      })
      expect((await w.send(alice, initialize)).status).toBe(200)
      for (let i = 0; i < 3; i++)
        expect(await textOf(await w.send(bob, toolCall('whoami')))).toBe('bob')

      const [first, initialized, ...later] = used
      expect(initialized?.server.getClientVersion()).toEqual({ name: 'alice-app', version: '1' })
      expect(initialized?.server.getClientCapabilities()).toHaveProperty('elicitation')
      expect(later).toHaveLength(3)
      for (const server of later) {
        expect(server).not.toBe(initialized)
        expect(server.server.getClientCapabilities()).toBeUndefined()
      }
      // …while the pool does reuse the server of ordinary calls.
      expect(later).toContain(first)
    } finally {
      await w.run.close()
    }
  })

  it('serves a tool registered after serving began (servers of older registrations are dropped)', async () => {
    const w = await world()
    try {
      expect(await textOf(await w.send(alice, toolCall('whoami')))).toBe('alice')
      w.tools.register('late', { policy: { public: true } }, () => ({
        content: [{ type: 'text', text: 'late' }],
      }))
      expect(await textOf(await w.send(alice, toolCall('late')))).toBe('late')
      const listed = (await (await w.send(alice, rpc('tools/list'))).json()) as {
        result: { tools: { name: string }[] }
      }
      expect(listed.result.tools.map((t) => t.name)).toContain('late')
    } finally {
      await w.run.close()
    }
  })
})
