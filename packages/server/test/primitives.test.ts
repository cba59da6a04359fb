/**
 * Every MCP primitive behind per-call proofs (issue 11): resources, resource templates, prompts,
 * completions, logging and ping, over real HTTP, the real SDK server and client, and real tokens
 * and proofs. For each primitive: allowed for the right caller, refused for a caller without the
 * policy's requirements (status and challenge), bound (a proof for one URI or prompt refused for
 * another), invisible in the listings of a caller who can never be granted it, and out of reach
 * on a session another caller opened.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Hono } from 'hono'
import { z } from 'zod'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { completable } from '@modelcontextprotocol/sdk/server/completable.js'
import {
  ElicitRequestSchema,
  ElicitResultSchema,
  LoggingMessageNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js'
import { argsDigest } from '@callproof/core'
import { createCallproof, createToolRegistry, memorySink } from '../src/index.js'
import type { AuditSink, ToolRegistry } from '../src/index.js'
import { clientKey, startIssuer } from './helpers/issuer.js'
import type { ClientKey, TestIssuer } from './helpers/issuer.js'
import { INITIALIZE, dpopFetch, provenRequest, rpc } from './helpers/client.js'
import { listen } from './helpers/server.js'
import type { Running } from './helpers/server.js'

let issuer: TestIssuer
let alice: ClientKey
let bob: ClientKey

/** The tags of `slow` calls whose request was cancelled, in order. */
const aborts: string[] = []
/** The tags of `slow` calls that started. */
const started: string[] = []

function registry(): ToolRegistry {
  const tools = createToolRegistry({ name: 'prims', version: '0.0.0' }, { logging: true })
  tools.register('log', { policy: { public: true } }, async (extra) => {
    for (const level of ['info', 'error'] as const) {
      await extra.sendNotification({
        method: 'notifications/message',
        params: { level, data: `${level} message` },
      })
    }
    return { content: [{ type: 'text', text: 'logged' }] }
  })
  tools.register('ask', { policy: { public: true } }, async (extra) => {
    const answer = await extra.sendRequest(
      {
        method: 'elicitation/create',
        params: {
          message: 'Your name?',
          requestedSchema: { type: 'object', properties: { name: { type: 'string' } } },
        },
      },
      ElicitResultSchema,
    )
    return { content: [{ type: 'text', text: `answered ${JSON.stringify(answer.content)}` }] }
  })
  tools.register(
    'slow',
    { inputSchema: { tag: z.string() }, policy: { public: true } },
    async ({ tag }, extra) => {
      started.push(tag)
      await new Promise<void>((resolve) =>
        extra.signal.addEventListener('abort', () => {
          aborts.push(tag)
          resolve()
        }),
      )
      return { content: [{ type: 'text', text: 'cancelled' }] }
    },
  )
  tools.resource(
    'notes',
    'test://notes',
    { description: 'Notes', mimeType: 'text/plain', policy: { scopes: ['notes:read'] } },
    (uri) => ({ contents: [{ uri: uri.href, text: 'the notes' }] }),
  )
  tools.resource(
    'open',
    'test://open',
    { description: 'Open to all', policy: { public: true } },
    (uri) => ({ contents: [{ uri: uri.href, text: 'open' }] }),
  )
  tools.resource(
    'bob-secret',
    'test://bob-secret',
    { description: "Bob's", policy: { callers: { subjects: ['bob'] } } },
    (uri) => ({ contents: [{ uri: uri.href, text: 'for bob' }] }),
  )
  tools.resourceTemplate(
    'item',
    'test://items/{id}',
    {
      description: 'An item',
      policy: { scopes: ['notes:read'] },
      list: () => ({ resources: [{ uri: 'test://items/1', name: 'item 1' }] }),
      complete: { id: (value) => ['1', '12', '2'].filter((id) => id.startsWith(value)) },
    },
    (uri, { id }) => ({ contents: [{ uri: uri.href, text: `item ${String(id)}` }] }),
  )
  tools.resourceTemplate(
    'bob-item',
    'test://bob/{id}',
    {
      description: "Bob's items",
      policy: { callers: { subjects: ['bob'] } },
      list: () => ({ resources: [{ uri: 'test://bob/1', name: 'bob 1' }] }),
    },
    (uri) => ({ contents: [{ uri: uri.href, text: 'bob item' }] }),
  )
  tools.prompt(
    'greet',
    {
      description: 'Greets',
      argsSchema: {
        name: completable(z.string(), (v) => ['ann', 'anna'].filter((n) => n.startsWith(v))),
      },
      policy: { scopes: ['notes:read'] },
    },
    ({ name }) => ({ messages: [{ role: 'user', content: { type: 'text', text: `Hi ${name}` } }] }),
  )
  tools.prompt(
    'bob-prompt',
    {
      description: "Bob's prompt",
      argsSchema: { x: completable(z.string(), () => ['secret-suggestion']) },
      policy: { callers: { subjects: ['bob'] } },
    },
    () => ({ messages: [{ role: 'user', content: { type: 'text', text: 'bob' } }] }),
  )
  return tools
}

interface World {
  run: Running
  resource: string
  tools: ToolRegistry
  token(key: ClientKey, sub: string, scope?: string): Promise<string>
  send(
    key: ClientKey,
    message: unknown,
    options?: {
      sub?: string
      scope?: string
      proofMessage?: unknown
      sessionId?: string
      method?: string
      headers?: Record<string, string>
      proofKey?: ClientKey
      exp?: number
    },
  ): Promise<Response>
  client(key: ClientKey, sub: string, scope?: string): Promise<Client>
}

async function world(jsonResponse = true, audit?: AuditSink): Promise<World> {
  let resource = ''
  const tools = registry()
  const run = await listen((origin) => {
    resource = `${origin}/mcp`
    const callproof = createCallproof({
      resource,
      issuers: issuer.issuer,
      tools,
      jsonResponse,
      ...(audit !== undefined && { audit }),
    })
    const app = new Hono()
    callproof.mount(app)
    return app
  })
  const token = (key: ClientKey, sub: string, scope = 'notes:read') =>
    issuer.mint({ aud: resource, sub, scope, cnf: { jkt: key.jkt } })
  return {
    run,
    resource,
    tools,
    token,
    async send(key, message, options = {}) {
      const t =
        options.exp === undefined
          ? await token(key, options.sub ?? 'alice', options.scope)
          : await issuer.mint({
              aud: resource,
              sub: options.sub ?? 'alice',
              scope: options.scope ?? 'notes:read',
              cnf: { jkt: key.jkt },
              exp: options.exp,
            })
      return fetch(
        resource,
        await provenRequest(resource, {
          token: t,
          key: options.proofKey ?? key,
          message,
          ...(options.proofMessage !== undefined && { proofMessage: options.proofMessage }),
          ...(options.sessionId !== undefined && { sessionId: options.sessionId }),
          ...(options.method !== undefined && { method: options.method }),
          ...(options.headers !== undefined && { headers: options.headers }),
        }),
      )
    },
    async client(key, sub, scope) {
      const t = await token(key, sub, scope)
      const client = new Client({ name: 'test', version: '0.0.0' })
      await client.connect(
        new StreamableHTTPClientTransport(new URL(resource), {
          fetch: dpopFetch(resource, () => t, key),
        }),
      )
      return client
    },
  }
}

let w: World

beforeAll(async () => {
  issuer = await startIssuer()
  alice = await clientKey()
  bob = await clientKey()
  w = await world()
})
afterAll(async () => {
  await w.run.close()
  await issuer.close()
})

/** Reads JSON-RPC messages off an SSE answer, one at a time. */
function messages(
  response: Response,
): (() => Promise<Record<string, unknown>>) & { close(): Promise<void> } {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ''
  const next = async () => {
    for (;;) {
      const line = /^data: (.*)$/m.exec(buffer)
      if (line !== null) {
        buffer = buffer.slice(line.index + line[0].length)
        return JSON.parse(line[1]!) as Record<string, unknown>
      }
      const { value, done } = await reader.read()
      if (done) throw new Error('the stream ended')
      buffer += value
    }
  }
  return Object.assign(next, { close: () => reader.cancel() })
}

async function challenge(response: Response): Promise<string> {
  return response.headers.get('www-authenticate') ?? ''
}

describe('registration', () => {
  it('refuses a prompt or resource without a policy, with a bad one, or with a per-call approval', () => {
    const tools = createToolRegistry({ name: 'r', version: '0' })
    const read = (uri: URL) => ({ contents: [{ uri: uri.href, text: '' }] })
    const prompt = () => ({ messages: [] })
    expect(() => tools.resource('a', 'test://a', {} as never, read)).toThrow(
      'resource a needs a policy',
    )
    expect(() => tools.resource('a', 'not a uri', { policy: { public: true } }, read)).toThrow(
      'is not a URI',
    )
    expect(() =>
      tools.resourceTemplate('t', 'test://{x}', { policy: { scopes: [''] } }, read),
    ).toThrow('policy of resource template t: scopes must be non-empty strings')
    expect(() => tools.prompt('p', { policy: {} }, prompt)).toThrow(
      'policy of prompt p: requires nothing',
    )
    expect(() =>
      tools.prompt('p', { policy: { scopes: ['s'], approval: 'per-call' } }, prompt),
    ).toThrow('prompt p: per-call approval is available for tools only')
    tools.resource('a', 'test://a', { policy: { public: true } }, read)
    expect(() => tools.resource('b', 'TEST://a', { policy: { public: true } }, read)).toThrow(
      'resource test://a is already registered',
    )
    expect(tools.scopes()).toEqual([])
  })
})

describe('resources', () => {
  it('reads a resource for a caller the policy allows, through the real SDK client', async () => {
    const client = await w.client(alice, 'alice')
    const read = await client.readResource({ uri: 'test://notes' })
    expect(read.contents).toEqual([{ uri: 'test://notes', text: 'the notes' }])
    const item = await client.readResource({ uri: 'test://items/42' })
    expect(item.contents).toEqual([{ uri: 'test://items/42', text: 'item 42' }])
    await client.close()
  })

  it('refuses a caller without the scope: 403 insufficient_scope naming it', async () => {
    for (const [method, uri] of [
      ['resources/read', 'test://notes'],
      ['resources/read', 'test://items/7'],
      ['resources/subscribe', 'test://notes'],
    ] as const) {
      const response = await w.send(alice, rpc(method, { uri }), { scope: 'other' })
      expect(response.status).toBe(403)
      const header = await challenge(response)
      expect(header).toMatch(/^DPoP /)
      expect(header).toContain('error="insufficient_scope"')
      expect(header).toContain('scope="notes:read"')
    }
  })

  it('refuses a caller outside the callers list, and an unknown URI, alike (403, nothing revealed)', async () => {
    const secret = await w.send(alice, rpc('resources/read', { uri: 'test://bob-secret' }))
    const unknown = await w.send(alice, rpc('resources/read', { uri: 'test://nothing' }))
    expect(secret.status).toBe(403)
    expect(unknown.status).toBe(403)
    expect(await secret.json()).toEqual(await unknown.json())
    const allowed = await w.send(bob, rpc('resources/read', { uri: 'test://bob-secret' }), {
      sub: 'bob',
    })
    expect(allowed.status).toBe(200)
  })

  it('binds the proof to the URI: a proof for one resource does not read another', async () => {
    const response = await w.send(alice, rpc('resources/read', { uri: 'test://notes' }), {
      proofMessage: rpc('resources/read', { uri: 'test://open' }),
    })
    expect(response.status).toBe(401)
    expect(await challenge(response)).toContain('error="invalid_dpop_proof"')
  })

  it('decides by the resource the SDK would read: a URI spelled differently gets its policy', async () => {
    // new URL() lower-cases the scheme: TEST://notes is the notes resource, under its policy.
    const response = await w.send(alice, rpc('resources/read', { uri: 'TEST://notes' }), {
      scope: 'other',
    })
    expect(response.status).toBe(403)
    const ok = await w.send(alice, rpc('resources/read', { uri: 'TEST://notes' }))
    expect(ok.status).toBe(200)
    expect(((await ok.json()) as { result: { contents: unknown[] } }).result.contents).toEqual([
      { uri: 'test://notes', text: 'the notes' },
    ])
  })

  it('lists only what the caller may ever read, each with its policy in _meta', async () => {
    const client = await w.client(alice, 'alice', 'none')
    const { resources } = await client.listResources()
    expect(resources.map((r) => r.uri)).toEqual(['test://notes', 'test://open', 'test://items/1'])
    expect(resources[0]?._meta?.['callproof/policy']).toEqual({
      scopes: ['notes:read'],
      stepUp: true,
    })
    const { resourceTemplates } = await client.listResourceTemplates()
    expect(resourceTemplates.map((t) => t.uriTemplate)).toEqual(['test://items/{id}'])
    await client.close()

    const bobs = await w.client(bob, 'bob')
    expect((await bobs.listResources()).resources.map((r) => r.uri)).toEqual([
      'test://notes',
      'test://open',
      'test://bob-secret',
      'test://items/1',
      'test://bob/1',
    ])
    expect((await bobs.listResourceTemplates()).resourceTemplates.map((t) => t.name)).toEqual([
      'item',
      'bob-item',
    ])
    await bobs.close()
  })
})

describe('prompts', () => {
  it('gets a prompt for a caller the policy allows', async () => {
    const client = await w.client(alice, 'alice')
    const prompt = await client.getPrompt({ name: 'greet', arguments: { name: 'ann' } })
    expect(prompt.messages).toEqual([{ role: 'user', content: { type: 'text', text: 'Hi ann' } }])
    await client.close()
  })

  it('refuses a caller without the scope (403 insufficient_scope) or outside the callers list (403)', async () => {
    const noScope = await w.send(
      alice,
      rpc('prompts/get', { name: 'greet', arguments: { name: 'x' } }),
      { scope: 'other' },
    )
    expect(noScope.status).toBe(403)
    expect(await challenge(noScope)).toContain('error="insufficient_scope"')
    const notBob = await w.send(
      alice,
      rpc('prompts/get', { name: 'bob-prompt', arguments: { x: 'a' } }),
    )
    expect(notBob.status).toBe(403)
    expect(await challenge(notBob)).toContain('error="access_denied"')
  })

  it('binds the proof to the name and to the arguments digest', async () => {
    const otherArgs = await w.send(
      alice,
      rpc('prompts/get', { name: 'greet', arguments: { name: 'eve' } }),
      { proofMessage: rpc('prompts/get', { name: 'greet', arguments: { name: 'ann' } }) },
    )
    expect(otherArgs.status).toBe(401)
    expect(await challenge(otherArgs)).toContain('error="invalid_dpop_proof"')
    const otherName = await w.send(
      bob,
      rpc('prompts/get', { name: 'bob-prompt', arguments: { x: 'a' } }),
      { sub: 'bob', proofMessage: rpc('prompts/get', { name: 'greet', arguments: { x: 'a' } }) },
    )
    expect(otherName.status).toBe(401)
    // The digest the proof must carry is the RFC 8785 digest of the arguments.
    expect(await argsDigest({ name: 'ann' })).not.toBe(await argsDigest({ name: 'eve' }))
  })

  it('lists only the prompts the caller may ever get, with their arguments and policy', async () => {
    const client = await w.client(alice, 'alice')
    const { prompts } = await client.listPrompts()
    expect(prompts.map((p) => p.name)).toEqual(['greet'])
    expect(prompts[0]?.arguments).toEqual([{ name: 'name', required: true }])
    expect(prompts[0]?._meta?.['callproof/policy']).toEqual({
      scopes: ['notes:read'],
      stepUp: false,
    })
    await client.close()
    const bobs = await w.client(bob, 'bob')
    expect((await bobs.listPrompts()).prompts.map((p) => p.name)).toEqual(['greet', 'bob-prompt'])
    await bobs.close()
  })
})

describe('completions', () => {
  const complete = (ref: unknown, name: string, value: string) =>
    rpc('completion/complete', { ref, argument: { name, value } })

  it('completes prompt and template arguments for a caller who may use them', async () => {
    const client = await w.client(alice, 'alice')
    const prompt = await client.complete({
      ref: { type: 'ref/prompt', name: 'greet' },
      argument: { name: 'name', value: 'an' },
    })
    expect(prompt.completion.values).toEqual(['ann', 'anna'])
    const template = await client.complete({
      ref: { type: 'ref/resource', uri: 'test://items/{id}' },
      argument: { name: 'id', value: '1' },
    })
    expect(template.completion.values).toEqual(['1', '12'])
    await client.close()
  })

  it('answers nothing for a prompt or template the caller may not use', async () => {
    for (const [ref, arg] of [
      [{ type: 'ref/prompt', name: 'bob-prompt' }, 'x'],
      [{ type: 'ref/resource', uri: 'test://bob/{id}' }, 'id'],
    ] as const) {
      const refused = await w.send(alice, complete(ref, arg, ''))
      expect(refused.status).toBe(403)
      expect(await refused.text()).not.toContain('secret-suggestion')
      const allowed = await w.send(bob, complete(ref, arg, ''), { sub: 'bob' })
      expect(allowed.status).toBe(200)
    }
    const noScope = await w.send(
      alice,
      complete({ type: 'ref/prompt', name: 'greet' }, 'name', 'a'),
      { scope: 'other' },
    )
    expect(noScope.status).toBe(403)
    expect(await challenge(noScope)).toContain('error="insufficient_scope"')
  })
})

describe('ping and sessions', () => {
  it('answers ping with {}', async () => {
    const response = await w.send(alice, rpc('ping'))
    expect(response.status).toBe(200)
    expect(((await response.json()) as { result: unknown }).result).toEqual({})
  })

  it("does not let another caller read, subscribe, complete or get anything on alice's session", async () => {
    const opened = await w.send(alice, INITIALIZE())
    const sessionId = opened.headers.get('mcp-session-id')!
    expect(sessionId).toBeTruthy()
    for (const message of [
      rpc('resources/read', { uri: 'test://open' }),
      rpc('prompts/get', { name: 'greet', arguments: { name: 'a' } }),
      rpc('resources/list'),
      rpc('logging/setLevel', { level: 'error' }),
      rpc('resources/subscribe', { uri: 'test://open' }),
      rpc('completion/complete', {
        ref: { type: 'ref/prompt', name: 'greet' },
        argument: { name: 'name', value: 'a' },
      }),
    ]) {
      const response = await w.send(bob, message, { sub: 'bob', sessionId })
      expect(response.status).toBe(404)
    }
    const own = await w.send(alice, rpc('resources/read', { uri: 'test://open' }), { sessionId })
    expect(own.status).toBe(200)
  })
})

describe('JSON answers on pooled servers', () => {
  it('a tool that asks the client something fails at once with a reason, instead of hanging', async () => {
    const response = await w.send(alice, rpc('tools/call', { name: 'ask' }))
    expect(response.status).toBe(200)
    const body = (await response.json()) as { result?: { isError?: boolean; content: unknown } }
    expect(body.result?.isError).toBe(true)
    expect(JSON.stringify(body.result?.content)).toContain('jsonResponse: false')
  })

  it("a cancellation reaches its own caller's running request only, and the call answers 202", async () => {
    const opened = await w.send(alice, INITIALIZE(), { sub: 'alice' })
    const sessionId = opened.headers.get('mcp-session-id')!
    const call = rpc('tools/call', { name: 'slow', arguments: { tag: 'json-alice' } })
    const running = w.send(alice, call, { sessionId })
    const cancel = {
      jsonrpc: '2.0',
      method: 'notifications/cancelled',
      params: { requestId: call.id, reason: 'test' },
    }
    for (let i = 0; i < 200 && !started.includes('json-alice'); i++) {
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    expect(started).toContain('json-alice')
    // Another caller, alice outside her session: the running call is not theirs to cancel.
    expect((await w.send(bob, cancel, { sub: 'bob' })).status).toBe(202)
    expect((await w.send(bob, cancel, { sub: 'bob', sessionId })).status).toBe(404)
    expect((await w.send(alice, cancel)).status).toBe(202)
    expect(aborts).not.toContain('json-alice')
    expect((await w.send(alice, cancel, { sessionId })).status).toBe(202)
    expect(aborts).toContain('json-alice')
    // A cancelled request sends no JSON-RPC answer; its HTTP request is not left hanging.
    const answered = await running
    expect(answered.status).toBe(202)
    expect(await answered.text()).toBe('')
    // The pool still serves calls (the cancelled request's server was closed, not reused).
    const after = await w.send(alice, rpc('tools/call', { name: 'log' }))
    expect(after.status).toBe(200)
    // The later tests count the aborts of their own calls.
    aborts.splice(0)
  })
})

describe('logging', () => {
  let sse: World
  beforeAll(async () => {
    sse = await world(false)
  })
  afterAll(async () => {
    await sse.run.close()
  })

  async function logsOf(client: Client): Promise<string[]> {
    const seen: string[] = []
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
      seen.push(n.params.level)
    })
    await client.callTool({ name: 'log' })
    return seen
  }

  it("keeps the level of the caller's own session, and no one else's", async () => {
    const alices = await sse.client(alice, 'alice')
    const bobs = await sse.client(bob, 'bob')
    expect(await alices.setLoggingLevel('error')).toEqual({})
    // Every request of a session is served by a new SDK server: the level lives in callproof.
    expect(await logsOf(alices)).toEqual(['error'])
    expect(await logsOf(bobs)).toEqual(['info', 'error'])
    await alices.close()
    await bobs.close()
  })
})

describe('server-to-client requests', () => {
  let sse: World
  const audit = memorySink()
  beforeAll(async () => {
    sse = await world(false, audit)
  })
  afterAll(async () => {
    await sse.run.close()
  })

  async function session(key: ClientKey, sub: string): Promise<string> {
    const opened = await sse.send(key, INITIALIZE(), { sub })
    await opened.body?.cancel()
    return opened.headers.get('mcp-session-id')!
  }

  it('an elicitation reaches the SDK client that made the call, and its answer comes back', async () => {
    // The real SDK client answers (its capabilities say elicitation).
    const answering = new Client({ name: 'a', version: '0' }, { capabilities: { elicitation: {} } })
    const t = await sse.token(alice, 'alice')
    answering.setRequestHandler(ElicitRequestSchema, () => ({
      action: 'accept',
      content: { name: 'Alice' },
    }))
    await answering.connect(
      new StreamableHTTPClientTransport(new URL(sse.resource), {
        fetch: dpopFetch(sse.resource, () => t, alice),
      }),
    )
    const result = await answering.callTool({ name: 'ask' })
    expect(result.content).toEqual([{ type: 'text', text: 'answered {"name":"Alice"}' }])
    await answering.close()
  })

  it('only the caller and session it was sent to can answer, once, with a proof bound to it', async () => {
    const alicesSession = await session(alice, 'alice')
    const bobsSession = await session(bob, 'bob')
    const call = await sse.send(alice, rpc('tools/call', { name: 'ask' }), {
      sessionId: alicesSession,
    })
    expect(call.status).toBe(200)
    const next = messages(call)
    const request = await next()
    expect(request.method).toBe('elicitation/create')
    const id = request.id as string
    // Our own id, not the SDK server's counter: nobody can guess the next one.
    expect(id).toMatch(/^callproof-[0-9a-f-]{36}$/)
    const answer = { jsonrpc: '2.0', id, result: { action: 'accept', content: { name: 'A' } } }
    const forged = { ...answer, result: { action: 'accept', content: { name: 'FORGED' } } }
    /** The audit reason of the request `response` answered. */
    const reasonOf = (response: Response) =>
      audit.events
        .filter((e) => e.requestId === response.headers.get('x-request-id'))
        .map((e) => e.reason)

    // Another caller, on its own session or on alice's (404 there: not his session); alice
    // outside the session the request went to. Accepted as any response POST is, the same for
    // an unknown id and someone else's, and delivered nowhere: the audit says so.
    const bobOwn = await sse.send(bob, forged, { sub: 'bob', sessionId: bobsSession })
    expect(bobOwn.status).toBe(202)
    expect(reasonOf(bobOwn)).toEqual(['answer_dropped'])
    const unknown = await sse.send(
      bob,
      { ...forged, id: 'callproof-unknown' },
      {
        sub: 'bob',
        sessionId: bobsSession,
      },
    )
    expect(unknown.status).toBe(202)
    expect(reasonOf(unknown)).toEqual(['answer_dropped'])
    expect((await sse.send(bob, forged, { sub: 'bob', sessionId: alicesSession })).status).toBe(404)
    const elsewhere = await sse.send(alice, forged)
    expect(reasonOf(elsewhere)).toEqual(['answer_dropped'])
    // A proof bound to another response id does not carry this answer.
    const misbound = await sse.send(alice, forged, {
      sessionId: alicesSession,
      proofMessage: { ...forged, id: 'callproof-other' },
    })
    expect(misbound.status).toBe(401)

    // The tool is still waiting: the first answer it gets is alice's own.
    const delivered = await sse.send(alice, answer, { sessionId: alicesSession })
    expect(delivered.status).toBe(202)
    expect(reasonOf(delivered)).toEqual(['allowed'])
    const result = await next()
    expect(result.result).toEqual({ content: [{ type: 'text', text: 'answered {"name":"A"}' }] })
    // Answered once: a second answer, under a fresh proof, is delivered nowhere.
    const again = await sse.send(alice, answer, { sessionId: alicesSession })
    expect(reasonOf(again)).toEqual(['answer_dropped'])
  })

  it("a cancellation reaches its own caller's running request on the same session only", async () => {
    const alicesSession = await session(alice, 'alice')
    const bobsSession = await session(bob, 'bob')
    const call = rpc('tools/call', { name: 'slow', arguments: { tag: 'alice' } })
    const running = await sse.send(alice, call, { sessionId: alicesSession })
    expect(running.status).toBe(200)
    const cancel = {
      jsonrpc: '2.0',
      method: 'notifications/cancelled',
      params: { requestId: call.id, reason: 'test' },
    }
    // The SDK aborts in a promise callback, which runs before any answer reaches us: after
    // each 202 below, an abort would already be recorded.
    expect((await sse.send(bob, cancel, { sub: 'bob', sessionId: bobsSession })).status).toBe(202)
    expect((await sse.send(bob, cancel, { sub: 'bob' })).status).toBe(202)
    expect((await sse.send(bob, cancel, { sub: 'bob', sessionId: alicesSession })).status).toBe(404)
    expect((await sse.send(alice, cancel)).status).toBe(202)
    expect(aborts).toEqual([])
    expect((await sse.send(alice, cancel, { sessionId: alicesSession })).status).toBe(202)
    expect(aborts).toEqual(['alice'])
    await running.body?.cancel()

    // Outside any session, the caller is what binds: bob's cancel of the same id goes nowhere.
    const call2 = rpc('tools/call', { name: 'slow', arguments: { tag: 'sessionless' } })
    const running2 = await sse.send(alice, call2)
    const cancel2 = { ...cancel, params: { requestId: call2.id } }
    expect((await sse.send(bob, cancel2, { sub: 'bob' })).status).toBe(202)
    expect((await sse.send(bob, cancel2, { sub: 'alice' })).status).toBe(202)
    expect(aborts).toEqual(['alice'])
    expect((await sse.send(alice, cancel2)).status).toBe(202)
    expect(aborts).toEqual(['alice', 'sessionless'])
    await running2.body?.cancel()
  })

  it('outside any session, the caller is what binds: another caller cannot answer', async () => {
    const call = await sse.send(alice, rpc('tools/call', { name: 'ask' }))
    const next = messages(call)
    const { id } = await next()
    const answer = { jsonrpc: '2.0', id, result: { action: 'decline' } }
    const forged = { ...answer, result: { action: 'accept', content: { by: 'bob' } } }
    expect((await sse.send(bob, forged, { sub: 'bob' })).status).toBe(202)
    // The same subject with another key is another caller too.
    expect((await sse.send(bob, forged, { sub: 'alice' })).status).toBe(202)
    expect((await sse.send(alice, answer)).status).toBe(202)
    // Neither forged answer reached the tool: the one it got is alice's.
    expect((await next()).result).toEqual({
      content: [{ type: 'text', text: 'answered undefined' }],
    })
  })
})

describe('the standalone stream and subscriptions', () => {
  async function session(key: ClientKey, sub: string): Promise<string> {
    const opened = await w.send(key, INITIALIZE(), { sub })
    return opened.headers.get('mcp-session-id')!
  }
  const stream = (key: ClientKey, sub: string, sessionId: string, lastEventId?: string) =>
    w.send(key, undefined, {
      sub,
      sessionId,
      method: 'GET',
      headers: {
        accept: 'text/event-stream',
        ...(lastEventId !== undefined && { 'last-event-id': lastEventId }),
      },
    })
  const subscribe = (key: ClientKey, sub: string, sessionId: string, uri: string) =>
    w.send(key, rpc('resources/subscribe', { uri }), { sub, sessionId })

  it('delivers an update to the subscribed session only, and resumes after Last-Event-ID', async () => {
    const alices = await session(alice, 'alice')
    const bobs = await session(bob, 'bob')
    expect((await subscribe(alice, 'alice', alices, 'test://notes')).status).toBe(200)
    expect((await subscribe(alice, 'alice', alices, 'test://items/1')).status).toBe(200)
    expect((await subscribe(bob, 'bob', bobs, 'test://open')).status).toBe(200)
    const aliceStream = await stream(alice, 'alice', alices)
    const bobStream = await stream(bob, 'bob', bobs)
    expect(aliceStream.status).toBe(200)
    expect(aliceStream.headers.get('content-type')).toBe('text/event-stream')
    const aliceNext = messages(aliceStream)
    const bobNext = messages(bobStream)

    w.tools.resourceUpdated('test://notes')
    w.tools.resourceUpdated('test://open')
    expect(await aliceNext()).toEqual({
      jsonrpc: '2.0',
      method: 'notifications/resources/updated',
      params: { uri: 'test://notes' },
    })
    // Bob's first event is his own subscription's: he never heard of alice's resource.
    expect(((await bobNext()).params as { uri: string }).uri).toBe('test://open')

    // Resumption: alice reconnects after her first event and gets only what followed it.
    await aliceNext.close()
    w.tools.resourceUpdated('TEST://items/1')
    const resumed = messages(await stream(alice, 'alice', alices, '0'))
    const replayed = await resumed()
    expect(replayed.params).toEqual({ uri: 'test://items/1' })
    await resumed.close()
    await bobNext.close()

    // Unsubscribed: nothing more for that URI (the next event is another subscription's).
    expect(
      (
        await w.send(alice, rpc('resources/unsubscribe', { uri: 'test://notes' }), {
          sessionId: alices,
        })
      ).status,
    ).toBe(200)
    expect((await subscribe(alice, 'alice', alices, 'test://open')).status).toBe(200)
    const after = messages(await stream(alice, 'alice', alices, '1'))
    w.tools.resourceUpdated('test://notes')
    w.tools.resourceUpdated('test://open')
    expect(((await after()).params as { uri: string }).uri).toBe('test://open')
    await after.close()
  })

  it('closes a stream when the token that opened it stops being accepted', async () => {
    const alices = await session(alice, 'alice')
    // Expired 4 s ago, inside the verifier's 5 s tolerance: accepted for about one more second.
    const exp = Math.floor(Date.now() / 1000) - 4
    const opened = await w.send(alice, undefined, {
      sessionId: alices,
      method: 'GET',
      headers: { accept: 'text/event-stream' },
      exp,
    })
    expect(opened.status).toBe(200)
    // The stream ends by itself (no event needed); a stream that stayed open would time out.
    await expect(messages(opened)()).rejects.toThrow('the stream ended')
    expect(Date.now()).toBeGreaterThanOrEqual((exp + 5) * 1000)
  })

  it('ends the stream of a session that is deleted', async () => {
    const alices = await session(alice, 'alice')
    expect((await subscribe(alice, 'alice', alices, 'test://notes')).status).toBe(200)
    const open = messages(await stream(alice, 'alice', alices))
    const deleted = await w.send(alice, undefined, { sessionId: alices, method: 'DELETE' })
    expect(deleted.status).toBe(200)
    await expect(open()).rejects.toThrow('the stream ended')
  })

  it('refuses a GET with a proof of another key, and on a session of another caller', async () => {
    const alices = await session(alice, 'alice')
    // Alice's token, bob's proof key: the token is bound to alice's key.
    const otherKey = await w.send(alice, undefined, {
      sessionId: alices,
      method: 'GET',
      proofKey: bob,
      headers: { accept: 'text/event-stream' },
    })
    expect(otherKey.status).toBe(401)
    expect(await challenge(otherKey)).toContain('error="invalid_dpop_proof"')
    const bobOnAlices = await stream(bob, 'bob', alices)
    expect(bobOnAlices.status).toBe(404)
    // Without a session there is no stream to open.
    const none = await w.send(alice, undefined, {
      method: 'GET',
      headers: { accept: 'text/event-stream' },
    })
    expect(none.status).toBe(405)
  })

  it('refuses a subscription outside any session (nowhere to deliver it)', async () => {
    const response = await w.send(alice, rpc('resources/subscribe', { uri: 'test://notes' }))
    expect(response.status).toBe(200)
    expect(((await response.json()) as { error?: { message: string } }).error?.message).toContain(
      'needs a session',
    )
  })
})
