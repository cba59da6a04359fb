/**
 * callproof on the MCP SDK v2 (`@callproof/server/v2`), on MCP 2026-07-28: stateless requests
 * that each prove their caller, `Mcp-Method`/`Mcp-Name` checked against the body and the proof's
 * binding before anything is spent, Multi Round-Trip continuations bound to caller and call; and
 * the same server speaking 2025-11-25 to the SDK v1 client. Raw signed requests for 2026-07-28
 * (callproof's client speaks 2025-11-25 today); a real v2 SDK server behind a real HTTP server.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { Hono } from 'hono'
import { z } from 'zod'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { ElicitResultSchema } from '@modelcontextprotocol/sdk/types.js'
import { McpServer, inputRequired } from '@modelcontextprotocol/server'
import type { ServerContext } from '@modelcontextprotocol/server'
import { bindingFor, createProof } from '@callproof/core'
import {
  POLICY_META_KEY,
  callerOf,
  createCallproof,
  createToolRegistry,
  memorySink,
} from '../src/v2.js'
import { clientKey, startIssuer } from './helpers/issuer.js'
import type { ClientKey, TestIssuer } from './helpers/issuer.js'
import { dpopFetch } from './helpers/client.js'
import { listen } from './helpers/server.js'
import type { Running } from './helpers/server.js'

const REVISION = '2026-07-28'
const ENVELOPE = {
  'io.modelcontextprotocol/protocolVersion': REVISION,
  'io.modelcontextprotocol/clientCapabilities': { elicitation: { form: {} } },
  'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '0.0.0' },
}

let issuer: TestIssuer
let alice: ClientKey
let bob: ClientKey
let run: Running
let resource = ''
/** A second server answering 2025-11-25 with SSE streams, whose tool asks the client. */
let streaming: Running
let streamingResource = ''
const audit = memorySink()
const seen: string[] = []

beforeAll(async () => {
  issuer = await startIssuer()
  alice = await clientKey()
  bob = await clientKey()
  const tools = createToolRegistry({ name: 'v2-test', version: '0.0.0' })
  tools.register('whoami', { policy: { public: true } }, (ctx) => {
    seen.push('whoami')
    return { content: [{ type: 'text', text: callerOf(ctx).sub }] }
  })
  tools.register(
    'read',
    { inputSchema: { path: z.string() }, policy: { scopes: ['drive:read'] } },
    ({ path }) => {
      seen.push(`read:${path}`)
      return { content: [{ type: 'text', text: `content of ${path}` }] }
    },
  )
  tools.register('bob_only', { policy: { callers: { subjects: ['bob'] } } }, () => ({
    content: [{ type: 'text', text: 'hi bob' }],
  }))
  // Written against SDK v1's `extra` (`_meta.progressToken`, `sendNotification`), as in v1 code.
  tools.register('progress', { policy: { public: true } }, async (extra) => {
    const token = extra._meta?.progressToken
    if (token !== undefined) {
      await extra.sendNotification({
        method: 'notifications/progress',
        params: { progressToken: token, progress: 1, total: 1 },
      })
    }
    return { content: [{ type: 'text', text: `progress as ${callerOf(extra).sub}` }] }
  })
  // A Multi Round-Trip tool: asks for a confirmation, then answers with the state it minted.
  tools.register(
    'confirm',
    { inputSchema: { what: z.string() }, policy: { public: true } },
    ({ what }, ctx) => {
      const { mcpReq } = ctx as unknown as ServerContext
      const answer = mcpReq.inputResponses?.['ok']
      if (answer === undefined) {
        // The registry's callback types are SDK v1's; a v2 result type is cast (the guide says so).
        return inputRequired({
          inputRequests: {
            ok: inputRequired.elicit({
              message: `confirm ${what}?`,
              requestedSchema: { type: 'object', properties: { yes: { type: 'boolean' } } },
            }),
          },
          requestState: `tool-state:${what}`,
        }) as never
      }
      seen.push(`confirmed:${what}:${String(mcpReq.requestState())}`)
      return { content: [{ type: 'text', text: `confirmed ${what}` }] }
    },
  )
  const asking = createToolRegistry({ name: 'v2-asking', version: '0.0.0' })
  asking.register('ask', { policy: { public: true } }, async (extra) => {
    const answer = await extra.sendRequest(
      {
        method: 'elicitation/create',
        params: {
          message: 'name?',
          requestedSchema: { type: 'object', properties: { name: { type: 'string' } } },
        },
      },
      ElicitResultSchema,
    )
    return { content: [{ type: 'text', text: `hello ${String(answer.content?.['name'])}` }] }
  })
  streaming = await listen((origin) => {
    streamingResource = `${origin}/mcp`
    const callproof = createCallproof({
      resource: streamingResource,
      issuers: issuer.issuer,
      tools: asking,
      jsonResponse: false,
    })
    const app = new Hono()
    callproof.mount(app)
    return app
  })
  run = await listen((origin) => {
    resource = `${origin}/mcp`
    const callproof = createCallproof({ resource, issuers: issuer.issuer, tools, audit })
    const app = new Hono()
    callproof.mount(app)
    return app
  })
})
afterAll(async () => {
  await streaming.close()
  await run.close()
  await issuer.close()
})

let nextId = 1

/** A 2026-07-28 request: the envelope in `_meta`, no initialize, no session. */
function modern(method: string, params: Record<string, unknown> = {}) {
  return {
    jsonrpc: '2.0',
    id: nextId++,
    method,
    params: { ...params, _meta: { ...ENVELOPE, ...(params._meta as object) } },
  }
}

/** The standard headers SEP-2243 asks of a client, for `message`. */
function standardHeaders(message: { method: string; params: Record<string, unknown> }) {
  const name = message.params.name ?? message.params.uri
  return {
    'mcp-protocol-version': REVISION,
    'mcp-method': message.method,
    ...(typeof name === 'string' ? { 'mcp-name': name } : {}),
  }
}

interface Send {
  key?: ClientKey
  sub?: string
  client?: string
  scope?: string
  headers?: Record<string, string | undefined>
  /** The message the proof binds, when it is not the one sent. */
  proofMessage?: unknown
}

async function send(
  message: { method: string; params: Record<string, unknown> },
  options: Send = {},
): Promise<Response> {
  const key = options.key ?? alice
  const token = await issuer.mint({
    aud: resource,
    cnf: { jkt: key.jkt },
    ...(options.sub !== undefined && { sub: options.sub }),
    ...(options.client !== undefined && { client_id: options.client }),
    ...(options.scope !== undefined && { scope: options.scope }),
  })
  const headers: Record<string, string> = {
    accept: 'application/json, text/event-stream',
    'content-type': 'application/json',
    authorization: `DPoP ${token}`,
    dpop: await createProof(key.keyPair, {
      htm: 'POST',
      htu: resource,
      accessToken: token,
      mcp: await bindingFor(options.proofMessage ?? message),
    }),
  }
  for (const [name, value] of Object.entries({ ...standardHeaders(message), ...options.headers })) {
    if (value === undefined) delete headers[name]
    else headers[name] = value
  }
  return fetch(resource, { method: 'POST', headers, body: JSON.stringify(message) })
}

async function resultOf(response: Response): Promise<Record<string, unknown>> {
  expect(response.status).toBe(200)
  const text = await response.text()
  const json = response.headers.get('content-type')?.startsWith('text/event-stream')
    ? text
        .split('\n')
        .filter((line) => line.startsWith('data: '))
        .map((line) => JSON.parse(line.slice(6)) as { result?: unknown })
        .find((m) => m.result !== undefined)
    : (JSON.parse(text) as { result?: unknown; error?: unknown })
  expect(json, text).toHaveProperty('result')
  return json!.result as Record<string, unknown>
}

function refusals(requestId: string | null) {
  return audit.events.filter((e) => e.requestId === requestId)
}

describe('2026-07-28 on the SDK v2 seam', () => {
  it('serves a stateless tools/list for the caller: no initialize, no session, policies listed', async () => {
    const response = await send(modern('tools/list'), { scope: 'other' })
    expect(response.headers.get('mcp-session-id')).toBeNull()
    const result = await resultOf(response)
    const tools = result.tools as { name: string; _meta?: Record<string, unknown> }[]
    expect(tools.map((t) => t.name).sort()).toEqual(['confirm', 'progress', 'read', 'whoami'])
    expect(tools.find((t) => t.name === 'read')?._meta?.[POLICY_META_KEY]).toEqual({
      scopes: ['drive:read'],
      stepUp: true,
    })
    // bob is shown the tool only he may call; alice never is (above).
    const bobs = await resultOf(await send(modern('tools/list'), { key: bob, sub: 'bob' }))
    expect((bobs.tools as { name: string }[]).map((t) => t.name)).toContain('bob_only')
  })

  it('runs a tool call as the verified caller, and applies its policy', async () => {
    const result = await resultOf(await send(modern('tools/call', { name: 'whoami' })))
    expect(result.content).toEqual([{ type: 'text', text: 'alice' }])
    const refused = await send(modern('tools/call', { name: 'read', arguments: { path: 'a' } }), {
      scope: 'other',
    })
    expect(refused.status).toBe(403)
    expect(refused.headers.get('www-authenticate')).toContain('insufficient_scope')
    const allowed = await send(modern('tools/call', { name: 'read', arguments: { path: 'a' } }), {
      scope: 'drive:read',
    })
    expect((await resultOf(allowed)).content).toEqual([{ type: 'text', text: 'content of a' }])
  })

  it('answers resources/subscribe, removed from 2026-07-28, with 404 method not found', async () => {
    const response = await send(modern('resources/subscribe', { uri: 'file:///a' }), {
      headers: { 'mcp-name': undefined },
    })
    expect(response.status).toBe(404)
    expect(await response.json()).toMatchObject({ error: { code: -32601 } })
  })

  it("runs a tool written against SDK v1's extra unchanged (progress on the response stream)", async () => {
    const message = modern('tools/call', { name: 'progress', _meta: { progressToken: 'p1' } })
    const response = await send(message)
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/)
    const text = await response.clone().text()
    expect(text).toContain('"method":"notifications/progress"')
    expect(text).toContain('"progressToken":"p1"')
    expect((await resultOf(response)).content).toEqual([
      { type: 'text', text: 'progress as alice' },
    ])
  })

  describe('Mcp-Method and Mcp-Name', () => {
    // Each mismatch: 400 ERR_HEADER_MISMATCH, the tool does not run, and the audit has a refusal
    // and no `allowed` event (the SDK alone would refuse only after the audit said `allowed`).
    const read = () => modern('tools/call', { name: 'read', arguments: { path: 'h' } })
    it.each<[string, Record<string, string | undefined>]>([
      ['Mcp-Method names another method than the body', { 'mcp-method': 'tools/list' }],
      ['Mcp-Method is missing', { 'mcp-method': undefined }],
      ['Mcp-Name names another tool than the body', { 'mcp-name': 'whoami' }],
      ['Mcp-Name is missing', { 'mcp-name': undefined }],
      ['Mcp-Name is not valid base64 in its sentinel form', { 'mcp-name': '=?base64?***?=' }],
    ])('refuses a request whose %s', async (_what, headers) => {
      const before = seen.length
      const response = await send(read(), { scope: 'drive:read', headers })
      expect(response.status).toBe(400)
      // Answered as the SDK answers it: a JSON-RPC HeaderMismatch error with the request's id.
      expect(await response.json()).toMatchObject({
        id: expect.any(Number),
        error: { code: -32020, data: { callproof: 'ERR_HEADER_MISMATCH' } },
      })
      expect(seen.length).toBe(before)
      const events = refusals(response.headers.get('x-request-id'))
      expect(events.map((e) => [e.decision, e.reason])).toEqual([
        ['refused', 'ERR_HEADER_MISMATCH'],
      ])
    })

    it('accepts a name in the base64 sentinel form', async () => {
      const response = await send(read(), {
        scope: 'drive:read',
        headers: { 'mcp-name': `=?base64?${btoa('read')}?=` },
      })
      expect((await resultOf(response)).content).toEqual([{ type: 'text', text: 'content of h' }])
    })

    it('refuses headers that agree with each other but not with the proof (the binding)', async () => {
      // The proof binds `whoami`; body and headers say `read`: the verifier refuses the proof.
      const message = read()
      const response = await send(message, {
        scope: 'drive:read',
        proofMessage: { ...message, params: { ...message.params, name: 'whoami' } },
      })
      expect(response.status).toBe(401)
      expect(await response.json()).toMatchObject({ code: 'ERR_BINDING_MISMATCH' })
    })

    it('refuses headers that name what the proof binds when the body says otherwise', async () => {
      // Headers and proof say `whoami`, the body says `read`.
      const message = read()
      const response = await send(message, {
        scope: 'drive:read',
        headers: { 'mcp-name': 'whoami' },
        proofMessage: { ...message, params: { ...message.params, name: 'whoami' } },
      })
      expect(response.status).toBe(401)
      expect(await response.json()).toMatchObject({ code: 'ERR_BINDING_MISMATCH' })
    })
  })

  describe('Multi Round-Trip continuations', () => {
    async function firstRound(what: string) {
      const message = modern('tools/call', { name: 'confirm', arguments: { what } })
      const result = await resultOf(await send(message))
      expect(result.resultType).toBe('input_required')
      return { message, state: result.requestState as string }
    }
    function retry(
      message: ReturnType<typeof modern>,
      extra: Record<string, unknown>,
      args?: Record<string, unknown>,
    ) {
      return modern('tools/call', {
        ...message.params,
        ...(args !== undefined && { arguments: args }),
        inputResponses: { ok: { action: 'accept', content: { yes: true } } },
        ...extra,
      })
    }

    it('seals the tool state to the caller and the call, and gives the tool its own state back', async () => {
      const { message, state } = await firstRound('deploy')
      expect(state).not.toContain('tool-state')
      const done = await resultOf(await send(retry(message, { requestState: state })))
      expect(done.content).toEqual([{ type: 'text', text: 'confirmed deploy' }])
      expect(seen).toContain('confirmed:deploy:tool-state:deploy')
    })

    // Functions: the keys exist only once beforeAll has run.
    it.each<[string, () => Send, Record<string, unknown> | undefined]>([
      ['another caller (subject and key)', () => ({ key: bob, sub: 'bob' }), undefined],
      ['the same subject with another key', () => ({ key: bob }), undefined],
      ['the same subject and key through another client', () => ({ client: 'other' }), undefined],
      ['the same caller for another call (other arguments)', () => ({}), { what: 'other' }],
    ])('refuses a continuation sent by %s', async (_who, options, args) => {
      const { message, state } = await firstRound('rotate')
      const before = seen.length
      const response = await send(retry(message, { requestState: state }, args), options())
      expect(response.status, await response.clone().text()).toBe(400)
      expect(await response.json()).toMatchObject({
        error: { code: -32602, data: { callproof: 'ERR_INVALID_CONTINUATION' } },
      })
      expect(seen.length).toBe(before)
    })

    it('refuses a forged state, and input responses without any state', async () => {
      const { message, state } = await firstRound('forge')
      const forged = `${state.slice(0, -4)}AAAA`
      for (const extra of [{ requestState: forged }, { requestState: 'tool-state:forge' }, {}]) {
        const response = await send(retry(message, extra))
        expect(response.status).toBe(400)
        expect(await response.json()).toMatchObject({
          error: { code: -32602, data: { callproof: 'ERR_INVALID_CONTINUATION' } },
        })
      }
    })
  })
})

describe('2025-11-25 on the SDK v2 seam', () => {
  it('refuses a 2025-11-25 request that carries a continuation it was never given', async () => {
    const message = {
      jsonrpc: '2.0',
      id: nextId++,
      method: 'tools/call',
      params: {
        name: 'confirm',
        arguments: { what: 'legacy' },
        inputResponses: { ok: { action: 'accept', content: { yes: true } } },
        requestState: 'tool-state:legacy',
      },
    }
    const before = seen.length
    const response = await send(message, {
      headers: {
        'mcp-protocol-version': '2025-11-25',
        'mcp-method': undefined,
        'mcp-name': undefined,
      },
    })
    expect(response.status).toBe(400)
    expect(await response.json()).toMatchObject({ code: 'ERR_INVALID_CONTINUATION' })
    expect(seen.length).toBe(before)
  })

  it('serves the SDK v1 client: initialize, a session bound to the caller, listing and calls', async () => {
    const t = await issuer.mint({ aud: resource, cnf: { jkt: alice.jkt } })
    const client = new Client({ name: 'v1-client', version: '0.0.0' })
    const transport = new StreamableHTTPClientTransport(new URL(resource), {
      fetch: dpopFetch(resource, () => t, alice),
    })
    await client.connect(transport)
    expect(transport.sessionId).toMatch(/^[\w-]{43}$/)
    const { tools } = await client.listTools()
    expect(tools.map((tool) => tool.name).sort()).toEqual(['confirm', 'progress', 'read', 'whoami'])
    const result = await client.callTool({ name: 'whoami' })
    expect(result.content).toEqual([{ type: 'text', text: 'alice' }])
    await client.close()
  })

  it('reuses pooled servers for JSON answers, and still lists each caller its own tools', async () => {
    const connectOf = async (key: ClientKey, sub: string) => {
      const t = await issuer.mint({ aud: resource, sub, cnf: { jkt: key.jkt } })
      const client = new Client({ name: `${sub}-client`, version: '0.0.0' })
      await client.connect(
        new StreamableHTTPClientTransport(new URL(resource), {
          fetch: dpopFetch(resource, () => t, key),
        }),
      )
      return client
    }
    const [a, b] = [await connectOf(alice, 'alice'), await connectOf(bob, 'bob')]
    const names = async (client: Client) =>
      (await client.listTools()).tools.map((tool) => tool.name).sort()
    // Warm: one pooled server exists once each caller has listed.
    await names(a)
    await names(b)
    const connect = vi.spyOn(McpServer.prototype, 'connect')
    try {
      for (let i = 0; i < 3; i++) {
        // One after another: the same pooled server serves alice, then bob, then alice…
        expect(await names(a)).toEqual(['confirm', 'progress', 'read', 'whoami'])
        expect(await names(b)).toEqual(['bob_only', 'confirm', 'progress', 'read', 'whoami'])
        expect((await b.callTool({ name: 'whoami' })).content).toEqual([
          { type: 'text', text: 'bob' },
        ])
        expect((await a.callTool({ name: 'whoami' })).content).toEqual([
          { type: 'text', text: 'alice' },
        ])
      }
      // Twelve requests, no server built for any of them.
      expect(connect).not.toHaveBeenCalled()
    } finally {
      connect.mockRestore()
      await a.close()
      await b.close()
    }
  })

  it('delivers the answer to a server request only from the caller it was sent to, once', async () => {
    const token = (key: ClientKey, sub: string) =>
      issuer.mint({ aud: streamingResource, sub, cnf: { jkt: key.jkt } })
    const post = async (key: ClientKey, sub: string, message: unknown) => {
      const t = await token(key, sub)
      return fetch(streamingResource, {
        method: 'POST',
        headers: {
          accept: 'application/json, text/event-stream',
          'content-type': 'application/json',
          'mcp-protocol-version': '2025-11-25',
          authorization: `DPoP ${t}`,
          dpop: await createProof(key.keyPair, {
            htm: 'POST',
            htu: streamingResource,
            accessToken: t,
            mcp: await bindingFor(message),
          }),
        },
        body: JSON.stringify(message),
      })
    }
    const call = { jsonrpc: '2.0', id: nextId++, method: 'tools/call', params: { name: 'ask' } }
    const response = await post(alice, 'alice', call)
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/)
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader()
    let buffer = ''
    const next = async (): Promise<{ id?: unknown; method?: string; result?: unknown }> => {
      for (;;) {
        const line = buffer.split('\n').find((l) => l.startsWith('data: '))
        if (line !== undefined) {
          buffer = buffer.slice(buffer.indexOf(line) + line.length)
          return JSON.parse(line.slice(6)) as { id?: unknown; method?: string }
        }
        const { value, done } = await reader.read()
        if (done) throw new Error('the stream ended')
        buffer += value
      }
    }
    const asked = await next()
    expect(asked.method).toBe('elicitation/create')
    expect(String(asked.id)).toMatch(/^callproof-/)
    const answer = (name: string) => ({
      jsonrpc: '2.0',
      id: asked.id,
      result: { action: 'accept', content: { name } },
    })
    // Bob's answer (another subject and key) is accepted and goes nowhere.
    expect((await post(bob, 'bob', answer('mallory'))).status).toBe(202)
    expect((await post(alice, 'alice', answer('alice'))).status).toBe(202)
    const done = await next()
    expect(done.result).toEqual({ content: [{ type: 'text', text: 'hello alice' }] })
    await reader.cancel()
  })
})
