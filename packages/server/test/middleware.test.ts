import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Hono } from 'hono'
import { z } from 'zod'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { MemoryReplayStore, argsDigest, parseWwwAuthenticate } from '@callproof/core'
import { callerOf, createCallproof, createToolRegistry, memorySink } from '../src/index.js'
import type { AuditSink, CallproofEnv, CallproofOptions } from '../src/index.js'
import { clientKey, startIssuer } from './helpers/issuer.js'
import type { ClientKey, TestIssuer } from './helpers/issuer.js'
import { INITIALIZE, dpopFetch, provenRequest, rpc, toolCall } from './helpers/client.js'
import { listen } from './helpers/server.js'
import type { Running } from './helpers/server.js'

let issuer: TestIssuer
let alice: ClientKey
let bob: ClientKey
const runs: string[] = []

beforeAll(async () => {
  issuer = await startIssuer()
  alice = await clientKey()
  bob = await clientKey()
})
afterAll(async () => {
  await issuer.close()
})

function registry(seen: string[]) {
  const tools = createToolRegistry({ name: 'test', version: '0.0.0' })
  tools.register('whoami', { policy: { public: true } }, (extra) => {
    seen.push('whoami')
    return {
      content: [
        {
          type: 'text',
          text: JSON.stringify({ caller: callerOf(extra), authInfo: extra.authInfo }),
        },
      ],
    }
  })
  tools.register(
    'read',
    { inputSchema: { path: z.string() }, policy: { scopes: ['drive:read'] } },
    ({ path }) => {
      seen.push(`read:${path}`)
      return { content: [{ type: 'text', text: `content of ${path}` }] }
    },
  )
  tools.register(
    'remove',
    {
      inputSchema: { path: z.string() },
      policy: { scopes: ['drive:write'], acr: ['urn:callproof:acr:mfa'], maxAge: 300 },
    },
    ({ path }) => {
      seen.push(`remove:${path}`)
      return { content: [{ type: 'text', text: 'removed' }] }
    },
  )
  tools.register(
    'share',
    {
      inputSchema: { path: z.string(), with: z.string() },
      policy: { scopes: ['drive:share'], approval: 'per-call' },
    },
    ({ path, with: w }) => {
      seen.push(`share:${path}:${w}`)
      return { content: [{ type: 'text', text: 'shared' }] }
    },
  )
  tools.register('bob_only', { policy: { callers: { subjects: ['bob'] } } }, () => {
    seen.push('bob_only')
    return { content: [{ type: 'text', text: 'hi bob' }] }
  })
  return tools
}

interface Setup {
  run: Running
  resource: string
  seen: string[]
  audit: ReturnType<typeof memorySink>
  send(input: Parameters<typeof provenRequest>[1]): Promise<Response>
}

async function setup(extra: Partial<CallproofOptions> = {}): Promise<Setup> {
  const seen: string[] = []
  const audit = memorySink()
  let resource = ''
  const run = await listen((origin) => {
    resource = `${origin}/mcp`
    const callproof = createCallproof({
      resource,
      issuers: issuer.issuer,
      tools: registry(seen),
      audit,
      ...extra,
    })
    const app = new Hono()
    callproof.mount(app)
    return app
  })
  return {
    run,
    resource,
    seen,
    audit,
    send: async (input) => fetch(resource, await provenRequest(resource, input)),
  }
}

/**
 * Everything a caller can read from an answer, with the tool name it asked for replaced: only the
 * per-request `x-request-id` and the `date` are left out.
 */
async function onTheWire(response: Response, tool: string) {
  const masked = (text: string) => text.replaceAll(tool, '<tool>')
  const headers = [...response.headers]
    .filter(([name]) => name !== 'x-request-id' && name !== 'date')
    .map(([name, value]) => [name, masked(value)])
  return { status: response.status, headers, body: masked(await response.text()) }
}

/** The audit event of the request that got `response`. */
function eventOf(s: Setup, response: Response) {
  return s.audit.events.find((e) => e.requestId === response.headers.get('x-request-id'))
}

async function token(s: Setup, claims: Record<string, unknown> = {}, key: ClientKey = alice) {
  return issuer.mint({ aud: s.resource, cnf: { jkt: key.jkt }, ...claims })
}

describe('the request path', () => {
  let s: Setup
  beforeAll(async () => {
    s = await setup()
  })
  afterAll(async () => s.run.close())

  it('answers a request without credentials with 401 and a challenge without error', async () => {
    const response = await s.send({ message: toolCall('whoami') })
    expect(response.status).toBe(401)
    const [challenge] = parseWwwAuthenticate(response.headers.get('www-authenticate') ?? '')
    expect(challenge?.scheme).toBe('DPoP')
    expect(challenge?.params['error']).toBeUndefined()
    expect(challenge?.params['resource_metadata']).toBe(
      `${new URL(s.resource).origin}/.well-known/oauth-protected-resource/mcp`,
    )
  })

  it('runs a verified call and hands the caller to the handler as extra.authInfo', async () => {
    const t = await token(s, { acr: 'urn:callproof:acr:pwd', auth_time: 1_700_000_000 })
    const response = await s.send({ token: t, key: alice, message: toolCall('whoami') })
    expect(response.status).toBe(200)
    const body = (await response.json()) as { result: { content: { text: string }[] } }
    const { caller, authInfo } = JSON.parse(body.result.content[0]!.text) as {
      caller: Record<string, unknown>
      authInfo: Record<string, unknown>
    }
    expect(caller).toMatchObject({
      sub: 'alice',
      clientId: 'test-client',
      jkt: alice.jkt,
      acr: 'urn:callproof:acr:pwd',
      authTime: 1_700_000_000,
      scopes: ['drive:read'],
    })
    expect(authInfo).toMatchObject({
      token: t,
      clientId: 'test-client',
      scopes: ['drive:read'],
      resource: s.resource,
      extra: { caller: { sub: 'alice', clientId: 'test-client', jkt: alice.jkt } },
    })
    expect(typeof authInfo['expiresAt']).toBe('number')
    expect(response.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
  })

  it('refuses another caller’s token presented with the caller’s own key, without running the tool', async () => {
    const t = await token(s, {}, alice)
    const before = s.seen.length
    const response = await s.send({ token: t, key: bob, message: toolCall('read', { path: 'a' }) })
    expect(response.status).toBe(401)
    expect(response.headers.get('www-authenticate')).toContain('invalid_dpop_proof')
    expect(s.seen.length).toBe(before)
  })

  it('refuses a proof bound to other arguments (binding is checked on the executed body)', async () => {
    const t = await token(s)
    const response = await s.send({
      token: t,
      key: alice,
      message: toolCall('read', { path: 'secret' }),
      proofMessage: toolCall('read', { path: 'public' }),
    })
    expect(response.status).toBe(401)
    expect(s.seen).not.toContain('read:secret')
  })

  it('refuses a JSON-RPC batch with 400 before any credential check', async () => {
    const response = await s.send({ rawBody: JSON.stringify([toolCall('whoami')]) })
    expect(response.status).toBe(400)
    expect(response.headers.get('www-authenticate')).toBeNull()
    expect(((await response.json()) as { code: string }).code).toBe('ERR_BATCH_NOT_SUPPORTED')
  })

  it('refuses malformed JSON with 400, never 500', async () => {
    for (const rawBody of ['{', '"just a string"', '42', 'null', '\u0000']) {
      const response = await s.send({ rawBody })
      expect(response.status, rawBody).toBe(400)
    }
  })

  it('digests arguments only for a valid token: an anonymous call with undigestible arguments gets 401', async () => {
    // Arguments that cannot be canonicalised (a lone surrogate, a number JSON cannot carry) are
    // refused with 400 by the binding step. That an anonymous sender gets 401 instead shows that
    // the binding — canonicalisation and SHA-256 of the arguments — was never computed for it.
    const bodies = [
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read","arguments":{"path":"\\ud800"}}}',
      '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"read","arguments":{"n":1e400}}}',
    ]
    for (const rawBody of bodies) {
      const before = s.audit.events.length
      const anonymous = await s.send({ rawBody })
      expect(anonymous.status, rawBody).toBe(401)
      const refusal = s.audit.events.at(-1)!
      expect(s.audit.events.length).toBe(before + 1)
      expect(refusal).toMatchObject({ reason: 'ERR_NO_CREDENTIALS', method: 'tools/call' })
      expect(refusal.argsDigest).toBeUndefined()
      // With a valid token and proof the same body reaches the binding step: 400, nothing runs.
      const t = await token(s)
      const seen = s.seen.length
      const proven = await s.send({
        token: t,
        key: alice,
        rawBody,
        proofMessage: toolCall('read', { path: 'x' }),
      })
      expect(proven.status, rawBody).toBe(400)
      expect(((await proven.json()) as { code: string }).code).toBe('ERR_MALFORMED_BODY')
      expect(s.seen.length).toBe(seen)
    }
  })

  it('records the argument digest of a verified call once, from the verified binding', async () => {
    const t = await token(s)
    const args = { path: 'digest-me' }
    const response = await s.send({ token: t, key: alice, message: toolCall('read', args) })
    expect(response.status).toBe(200)
    expect(s.audit.events.at(-1)).toMatchObject({
      decision: 'allowed',
      tool: 'read',
      argsDigest: await argsDigest(args),
    })
  })

  it('refuses invalid UTF-8 with 400', async () => {
    const response = await fetch(s.resource, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]),
    })
    expect(response.status).toBe(400)
  })

  it('verifies a GET before answering 405 (no standalone stream), and refuses a GET proof with mcp', async () => {
    const unauthenticated = await s.send({ method: 'GET' })
    expect(unauthenticated.status).toBe(401)
    const t = await token(s)
    const verified = await s.send({ token: t, key: alice, method: 'GET' })
    expect(verified.status).toBe(405)
    const bound = await s.send({
      token: t,
      key: alice,
      method: 'GET',
      proofMessage: toolCall('whoami'),
    })
    expect(bound.status).toBe(401)
  })

  it('answers methods other than POST, GET and DELETE with 405', async () => {
    const response = await fetch(s.resource, { method: 'PUT', body: '{}' })
    expect(response.status).toBe(405)
  })

  it('refuses a tool the policy does not name (unknown tool) with 403', async () => {
    const t = await token(s)
    const response = await s.send({ token: t, key: alice, message: toolCall('nope') })
    expect(response.status).toBe(403)
    expect(((await response.json()) as { code: string }).code).toBe('ERR_TOOL_DENIED')
  })

  it('refuses a tool restricted to other callers even if asked directly', async () => {
    const t = await token(s)
    const response = await s.send({ token: t, key: alice, message: toolCall('bob_only') })
    expect(response.status).toBe(403)
    expect(s.seen).not.toContain('bob_only')
  })

  it('answers a caller excluded by callers exactly as an unknown tool; only the audit differs', async () => {
    const t = await token(s)
    // Same JSON-RPC id, and names of one length so that not even Content-Length could differ.
    const excluded = await s.send({
      token: t,
      key: alice,
      message: { ...toolCall('bob_only'), id: 7 },
    })
    const unknown = await s.send({
      token: t,
      key: alice,
      message: { ...toolCall('bob_gone'), id: 7 },
    })
    expect(excluded.status).toBe(403)
    expect(excluded.headers.get('www-authenticate')).toContain('error="access_denied"')
    expect(await onTheWire(excluded, 'bob_only')).toEqual(await onTheWire(unknown, 'bob_gone'))
    expect(eventOf(s, excluded)).toMatchObject({
      decision: 'refused',
      reason: 'ERR_CALLER_NOT_ALLOWED',
      tool: 'bob_only',
      sub: 'alice',
      status: 403,
    })
    expect(eventOf(s, unknown)).toMatchObject({
      decision: 'refused',
      reason: 'ERR_TOOL_DENIED',
      tool: 'bob_gone',
      sub: 'alice',
      status: 403,
    })
    expect(s.seen).not.toContain('bob_only')
  })

  it('challenges a missing scope with 403 insufficient_scope naming the scope', async () => {
    const t = await token(s, { scope: 'drive:read' })
    const response = await s.send({
      token: t,
      key: alice,
      message: toolCall('remove', { path: 'x' }),
    })
    expect(response.status).toBe(403)
    const [challenge] = parseWwwAuthenticate(response.headers.get('www-authenticate') ?? '')
    expect(challenge?.params['error']).toBe('insufficient_scope')
    expect(challenge?.params['scope']).toBe('drive:write')
    expect(s.seen).not.toContain('remove:x')
  })

  it('challenges a weak login with 401 insufficient_user_authentication', async () => {
    const t = await token(s, {
      scope: 'drive:write',
      acr: 'urn:callproof:acr:pwd',
      auth_time: Math.floor(Date.now() / 1000),
    })
    const response = await s.send({
      token: t,
      key: alice,
      message: toolCall('remove', { path: 'x' }),
    })
    expect(response.status).toBe(401)
    const [challenge] = parseWwwAuthenticate(response.headers.get('www-authenticate') ?? '')
    expect(challenge?.params['error']).toBe('insufficient_user_authentication')
    expect(challenge?.params['max_age']).toBe('300')
    expect(s.seen).not.toContain('remove:x')
  })
})

describe('per-call approval', () => {
  let s: Setup
  beforeAll(async () => {
    s = await setup()
  })
  afterAll(async () => s.run.close())

  async function approval(args: Record<string, unknown>) {
    return token(s, {
      scope: 'drive:share',
      authorization_details: [
        {
          type: 'mcp_tool_call',
          resource: s.resource,
          tool: 'share',
          args: await argsDigest(args),
        },
      ],
    })
  }

  it('serves exactly one call, then refuses the same approval with ERR_APPROVAL_USED', async () => {
    const args = { path: 'a.txt', with: 'bob' }
    const t = await approval(args)
    const first = await s.send({ token: t, key: alice, message: toolCall('share', args) })
    expect(first.status).toBe(200)
    const second = await s.send({ token: t, key: alice, message: toolCall('share', args) })
    expect(second.status).toBe(403)
    expect(((await second.json()) as { code: string }).code).toBe('ERR_APPROVAL_USED')
    expect(s.seen.filter((x) => x === 'share:a.txt:bob')).toHaveLength(1)
  })

  it('does not burn an approval on a call refused for another reason', async () => {
    const args = { path: 'b.txt', with: 'bob' }
    const t = await approval(args)
    // Refused: the proof names other arguments than the body.
    const refused = await s.send({
      token: t,
      key: alice,
      message: toolCall('share', args),
      proofMessage: toolCall('share', { path: 'b.txt', with: 'eve' }),
    })
    expect(refused.status).toBe(401)
    const ok = await s.send({ token: t, key: alice, message: toolCall('share', args) })
    expect(ok.status).toBe(200)
  })

  it('refuses an approval for other arguments', async () => {
    const t = await approval({ path: 'c.txt', with: 'bob' })
    const response = await s.send({
      token: t,
      key: alice,
      message: toolCall('share', { path: 'c.txt', with: 'eve' }),
    })
    expect(response.status).toBe(403)
    expect(((await response.json()) as { code: string }).code).toBe('ERR_APPROVAL_REQUIRED')
    expect(s.seen).not.toContain('share:c.txt:eve')
  })
})

describe('body limit', () => {
  it('refuses a body over the limit with 413 before parsing or checking credentials', async () => {
    const s = await setup({ bodyLimit: 1024 })
    try {
      const big = JSON.stringify(toolCall('read', { path: 'x'.repeat(2000) }))
      const response = await s.send({ rawBody: big })
      expect(response.status).toBe(413)
      // Chunked (no Content-Length): the limit is enforced while streaming too.
      const stream = new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode(big))
          controller.close()
        },
      })
      const chunked = await fetch(s.resource, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: stream,
        duplex: 'half',
      } as RequestInit)
      expect(chunked.status).toBe(413)
      // Just under the limit passes the size check (and then needs credentials).
      const small = await s.send({ message: toolCall('read', { path: 'x' }) })
      expect(small.status).toBe(401)
    } finally {
      await s.run.close()
    }
  })
})

describe('origin and host', () => {
  let s: Setup
  beforeAll(async () => {
    s = await setup()
  })
  afterAll(async () => s.run.close())

  it('refuses a foreign Origin with 403 before credentials are looked at', async () => {
    const t = await token(s)
    const response = await s.send({
      token: t,
      key: alice,
      message: toolCall('whoami'),
      headers: { origin: 'http://evil.example' },
    })
    expect(response.status).toBe(403)
    expect(((await response.json()) as { code: string }).code).toBe('ERR_ORIGIN_NOT_ALLOWED')
    expect(s.seen).not.toContain('whoami')
  })

  it('accepts the resource’s own Origin', async () => {
    const t = await token(s)
    const response = await s.send({
      token: t,
      key: alice,
      message: toolCall('whoami'),
      headers: { origin: new URL(s.resource).origin },
    })
    expect(response.status).toBe(200)
  })

  it('refuses a rebinding Host with 403', async () => {
    const { request } = await import('node:http')
    const url = new URL(s.resource)
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: 'POST',
          headers: { host: `evil.example:${url.port}`, 'content-type': 'application/json' },
        },
        (res) => {
          res.resume()
          resolve(res.statusCode ?? 0)
        },
      )
      req.on('error', reject)
      req.end(JSON.stringify(toolCall('whoami')))
    })
    expect(status).toBe(403)
  })
})

describe('sessions', () => {
  it('binds a session to its caller: another caller, another key or an unknown id get the same 404', async () => {
    const s = await setup()
    try {
      const aliceToken = await token(s, {}, alice)
      const init = await s.send({ token: aliceToken, key: alice, message: INITIALIZE() })
      expect(init.status).toBe(200)
      const sessionId = init.headers.get('mcp-session-id')
      expect(sessionId).toMatch(/^[A-Za-z0-9_-]{43}$/)

      const own = await s.send({
        token: aliceToken,
        key: alice,
        message: toolCall('whoami'),
        sessionId: sessionId!,
      })
      expect(own.status).toBe(200)

      // bob, with his own valid token and key, on alice's session
      const bobToken = await issuer.mint({ aud: s.resource, sub: 'bob', cnf: { jkt: bob.jkt } })
      const other = await s.send({
        token: bobToken,
        key: bob,
        message: toolCall('whoami'),
        sessionId: sessionId!,
      })
      // alice's subject and client, but another key
      const aliceOtherKey = await issuer.mint({ aud: s.resource, cnf: { jkt: bob.jkt } })
      const otherKey = await s.send({
        token: aliceOtherKey,
        key: bob,
        message: toolCall('whoami'),
        sessionId: sessionId!,
      })
      // same user, other client
      const otherClientToken = await issuer.mint({
        aud: s.resource,
        client_id: 'other',
        cnf: { jkt: alice.jkt },
      })
      const otherClient = await s.send({
        token: otherClientToken,
        key: alice,
        message: toolCall('whoami'),
        sessionId: sessionId!,
      })
      const unknown = await s.send({
        token: aliceToken,
        key: alice,
        message: toolCall('whoami'),
        sessionId: 'nope',
      })

      const answers = await Promise.all(
        [other, otherKey, otherClient, unknown].map(async (r) => ({
          status: r.status,
          body: await r.text(),
        })),
      )
      for (const answer of answers) {
        expect(answer.status).toBe(404)
        expect(answer.body).toBe(answers[3]!.body)
      }
      expect(s.seen.filter((x) => x === 'whoami')).toHaveLength(1)

      // A new token of the same caller (e.g. after a step-up) continues the session.
      const newer = await token(s, { scope: 'drive:read drive:write' }, alice)
      const continued = await s.send({
        token: newer,
        key: alice,
        message: toolCall('whoami'),
        sessionId: sessionId!,
      })
      expect(continued.status).toBe(200)

      // DELETE by another caller: 404, the session survives; by the owner: ended.
      const bobDelete = await s.send({
        token: bobToken,
        key: bob,
        method: 'DELETE',
        sessionId: sessionId!,
      })
      expect(bobDelete.status).toBe(404)
      const del = await s.send({
        token: aliceToken,
        key: alice,
        method: 'DELETE',
        sessionId: sessionId!,
      })
      expect(del.status).toBe(200)
      const after = await s.send({
        token: aliceToken,
        key: alice,
        message: toolCall('whoami'),
        sessionId: sessionId!,
      })
      expect(after.status).toBe(404)
    } finally {
      await s.run.close()
    }
  })

  it('with requireSessionId: 400 to a verified POST without Mcp-Session-Id after initialize, 401 to an anonymous one', async () => {
    const s = await setup({ sessions: { requireSessionId: true } })
    try {
      const t = await token(s)
      const init = await s.send({ token: t, key: alice, message: INITIALIZE() })
      expect(init.status).toBe(200)
      const sessionId = init.headers.get('mcp-session-id')!
      for (const message of [
        toolCall('whoami'),
        rpc('tools/list'),
        { jsonrpc: '2.0', method: 'notifications/initialized' },
      ]) {
        const before = s.seen.length
        const missing = await s.send({ token: t, key: alice, message })
        expect(missing.status, JSON.stringify(message)).toBe(400)
        expect(missing.headers.get('www-authenticate')).toBeNull()
        expect(((await missing.json()) as { code: string }).code).toBe('ERR_SESSION_REQUIRED')
        expect(s.seen.length).toBe(before)
        // Checked after authentication: without credentials the answer is the usual 401.
        const anonymous = await s.send({ message })
        expect(anonymous.status).toBe(401)
      }
      const within = await s.send({ token: t, key: alice, message: toolCall('whoami'), sessionId })
      expect(within.status).toBe(200)
      expect(s.audit.events.filter((e) => e.reason === 'ERR_SESSION_REQUIRED')).toHaveLength(3)
    } finally {
      await s.run.close()
    }
  })

  it('without requireSessionId serves a verified call outside any session; refuses a bad combination', async () => {
    const s = await setup()
    try {
      const t = await token(s)
      expect((await s.send({ token: t, key: alice, message: toolCall('whoami') })).status).toBe(200)
    } finally {
      await s.run.close()
    }
    expect(() =>
      createCallproof({
        resource: 'http://127.0.0.1:1/mcp',
        issuers: issuer.issuer,
        tools: registry([]),
        sessions: { mode: 'stateless', requireSessionId: true },
      }),
    ).toThrow(/requireSessionId/)
  })

  it('issues no session id in stateless mode', async () => {
    const s = await setup({ sessions: { mode: 'stateless' } })
    try {
      const t = await token(s)
      const init = await s.send({ token: t, key: alice, message: INITIALIZE() })
      expect(init.status).toBe(200)
      expect(init.headers.get('mcp-session-id')).toBeNull()
    } finally {
      await s.run.close()
    }
  })

  it('lets a session opened on one instance be used on another that shares the store', async () => {
    const { MemorySessionStore } = await import('../src/index.js')
    const store = new MemorySessionStore()
    // Two apps (instances) behind one public resource URI, sharing the session and replay stores.
    const a = await setup({ sessions: { store } })
    const seenB: string[] = []
    const b = await listen(() => {
      const callproof = createCallproof({
        resource: a.resource,
        issuers: issuer.issuer,
        tools: registry(seenB),
        sessions: { store },
        allowedHosts: 'any',
      })
      const app = new Hono()
      callproof.mount(app)
      return app
    })
    try {
      const t = await token(a)
      const init = await a.send({ token: t, key: alice, message: INITIALIZE() })
      const sessionId = init.headers.get('mcp-session-id')!
      const request = await provenRequest(a.resource, {
        token: t,
        key: alice,
        message: toolCall('whoami'),
        sessionId,
      })
      const onB = await fetch(`${b.origin}/mcp`, request)
      expect(onB.status).toBe(200)
      expect(seenB).toEqual(['whoami'])
    } finally {
      await a.run.close()
      await b.close()
    }
  })
})

describe('tools/list per caller', () => {
  it('leaves out tools the caller can never be granted and lists step-up requirements in _meta', async () => {
    const s = await setup()
    try {
      const t = await token(s, { scope: 'drive:read' })
      const client = new Client({ name: 'test', version: '0.0.0' })
      await client.connect(
        new StreamableHTTPClientTransport(new URL(s.resource), {
          fetch: dpopFetch(s.resource, () => t, alice),
        }),
      )
      const { tools } = await client.listTools()
      const names = tools.map((tool) => tool.name).sort()
      expect(names).toEqual(['read', 'remove', 'share', 'whoami'])
      const remove = tools.find((tool) => tool.name === 'remove')
      expect(remove?._meta?.['callproof/policy']).toEqual({
        scopes: ['drive:write'],
        acr: ['urn:callproof:acr:mfa'],
        maxAge: 300,
        stepUp: true,
      })
      expect(tools.find((tool) => tool.name === 'read')?._meta?.['callproof/policy']).toEqual({
        scopes: ['drive:read'],
        stepUp: false,
      })
      expect(
        tools.find((tool) => tool.name === 'share')?._meta?.['callproof/policy'],
      ).toMatchObject({
        approval: 'per-call',
        stepUp: true,
      })
      // The SDK client keeps working through the session callproof issued.
      const result = await client.callTool({ name: 'read', arguments: { path: 'p' } })
      expect(result.isError).toBeFalsy()
      await client.close()

      // bob sees his tool
      const bt = await issuer.mint({ aud: s.resource, sub: 'bob', cnf: { jkt: bob.jkt } })
      const bobClient = new Client({ name: 'test', version: '0.0.0' })
      await bobClient.connect(
        new StreamableHTTPClientTransport(new URL(s.resource), {
          fetch: dpopFetch(s.resource, () => bt, bob),
        }),
      )
      expect((await bobClient.listTools()).tools.map((tool) => tool.name)).toContain('bob_only')
      await bobClient.close()
    } finally {
      await s.run.close()
    }
  })
})

describe('audit', () => {
  it('records every decision with reason, caller and digest, and never the token or the arguments', async () => {
    const s = await setup()
    try {
      const t = await token(s)
      const secretArg = 'very-secret-path-value'
      await s.send({ token: t, key: alice, message: toolCall('read', { path: secretArg }) })
      const replayed = await provenRequest(s.resource, {
        token: t,
        key: alice,
        message: toolCall('read', { path: secretArg }),
      })
      await fetch(s.resource, replayed)
      await fetch(s.resource, replayed)
      await s.send({ message: toolCall('whoami') })
      await s.send({ token: t, key: alice, message: toolCall('whoami') })

      const events = s.audit.events
      expect(events.map((e) => [e.decision, e.reason])).toEqual([
        ['allowed', 'allowed'],
        ['allowed', 'allowed'],
        ['refused', 'ERR_REPLAY'],
        ['refused', 'ERR_NO_CREDENTIALS'],
        ['allowed', 'public'],
      ])
      const allowed = events[0]!
      expect(allowed).toMatchObject({
        httpMethod: 'POST',
        method: 'tools/call',
        tool: 'read',
        sub: 'alice',
        clientId: 'test-client',
        jkt: alice.jkt,
        argsDigest: await argsDigest({ path: secretArg }),
      })
      expect(typeof allowed.requestId).toBe('string')
      expect(Date.parse(allowed.time)).not.toBeNaN()
      expect(events[2]?.status).toBe(401)
      // A refusal at or after the binding check (here: replay) names the call it was for; the
      // anonymous one names its method but carries no digest (never computed for it).
      expect(events[2]).toMatchObject({ tool: 'read', argsDigest: allowed.argsDigest })
      expect(events[3]).toMatchObject({ method: 'tools/call', tool: 'whoami' })
      expect(events[3]?.argsDigest).toBeUndefined()
      // an unverified request names no caller
      expect(events[3]?.sub).toBeUndefined()
      const all = JSON.stringify(events)
      expect(all).not.toContain(t)
      expect(all).not.toContain(secretArg)
      expect(all).not.toContain(
        replayed.headers && (replayed.headers as Record<string, string>)['dpop'],
      )
    } finally {
      await s.run.close()
    }
  })

  it('refuses the call when the audit sink fails (no audit, no call)', async () => {
    const failing: AuditSink = {
      write() {
        throw new Error('disk full')
      },
    }
    const s = await setup({ audit: failing })
    try {
      const t = await token(s)
      const response = await s.send({
        token: t,
        key: alice,
        message: toolCall('read', { path: 'z' }),
      })
      expect(response.status).toBe(503)
      expect(s.seen).not.toContain('read:z')
    } finally {
      await s.run.close()
    }
  })
})

describe('nonces', () => {
  it('sends DPoP-Nonce on every answer and demands it in proofs', async () => {
    const nonce = { current: () => 'n-1', check: (n: string | undefined) => n === 'n-1' }
    const s = await setup({ nonce })
    try {
      const t = await token(s)
      const refused = await s.send({ token: t, key: alice, message: toolCall('whoami') })
      expect(refused.status).toBe(401)
      expect(refused.headers.get('dpop-nonce')).toBe('n-1')
      expect(refused.headers.get('www-authenticate')).toContain('use_dpop_nonce')
      const unauth = await s.send({ message: toolCall('whoami') })
      expect(unauth.headers.get('dpop-nonce')).toBe('n-1')
    } finally {
      await s.run.close()
    }
  })
})

describe('configuration is checked at creation', () => {
  const tools = createToolRegistry({ name: 't', version: '0' })
  const base = { resource: 'http://127.0.0.1:1/mcp', issuers: 'http://127.0.0.1:2', tools }
  it.each([
    [{ resource: 'not a url' }, /not an absolute URL/],
    [{ resource: 'http://127.0.0.1:1/mcp?x=1' }, /query or fragment/],
    [{ resource: 'http://drive.example/mcp' }, /https/],
    [{ issuers: [] }, /issuer/],
    [{ issuers: 'http://as.example' }, /https/],
    [{ algorithms: ['HS256'] }, /proof algorithm/],
    [{ algorithms: [] }, /at least one/],
    [{ tokenAlgorithms: ['HS256'] }, /asymmetric/],
    [{ bodyLimit: 0 }, /bodyLimit/],
    [{ proofMaxAgeSeconds: 0 }, /proofMaxAgeSeconds/],
    [{ sessions: { mode: 'sticky' } }, /sessions.mode/],
    [{ replay: {} }, /ReplayStore/],
    [{ audit: {} }, /AuditSink/],
    [{ tools: {} }, /ToolRegistry/],
    [{ allowedOrigins: ['http://127.0.0.1:1/mcp'] }, /not an origin/],
    [{ allowedOrigins: 'http://127.0.0.1:1' }, /allowedOrigins must be an array/],
    [{ allowedHosts: ['a b'] }, /allowedHosts entry/],
    [{ sessions: { ttlSeconds: 0 } }, /ttlSeconds/],
    [{ nonce: { current: () => 'n' } }, /NonceSource/],
  ])('%o', (override, message) => {
    expect(() => createCallproof({ ...base, ...(override as object) } as CallproofOptions)).toThrow(
      message,
    )
  })

  it('refuses a tool registered with an invalid policy', () => {
    const registry2 = createToolRegistry({ name: 't', version: '0' })
    expect(() =>
      registry2.register('x', { policy: { scopes: 'drive:read' } as never }, () => ({
        content: [],
      })),
    ).toThrow(/policy of tool x/)
    expect(() => registry2.register('y', {} as never, () => ({ content: [] }))).toThrow(
      /needs a policy/,
    )
  })
})

void runs
void rpc

describe('issuer keys through the middleware', () => {
  it('accepts tokens signed with a rotated key (new kid) without a restart', async () => {
    const s = await setup({ keys: { cooldownMs: 50 } })
    try {
      const before = await s.send({
        token: await token(s),
        key: alice,
        message: toolCall('whoami'),
      })
      expect(before.status).toBe(200)
      await issuer.rotate()
      await new Promise((resolve) => setTimeout(resolve, 80))
      const after = await s.send({ token: await token(s), key: alice, message: toolCall('whoami') })
      expect(after.status).toBe(200)
    } finally {
      await s.run.close()
    }
  })

  it('refuses a token whose issuer metadata names another issuer', async () => {
    issuer.metadataIssuer = 'http://127.0.0.1:1'
    const s = await setup()
    try {
      const response = await s.send({
        token: await token(s),
        key: alice,
        message: toolCall('whoami'),
      })
      expect(response.status).toBe(401)
      expect(s.seen).not.toContain('whoami')
    } finally {
      issuer.metadataIssuer = undefined
      await s.run.close()
    }
  })
})

describe('typed variables', () => {
  it('exposes the verified caller as c.var.caller to middleware wrapped around it', async () => {
    const callers: string[] = []
    const seen: string[] = []
    const run = await listen((origin) => {
      const callproof = createCallproof({
        resource: `${origin}/mcp`,
        issuers: issuer.issuer,
        tools: registry(seen),
      })
      const app = new Hono<CallproofEnv>()
      app.use('/mcp', async (c, next) => {
        await next()
        if (c.var.caller !== undefined) callers.push(`${c.var.caller.sub}/${c.var.call.proof.jkt}`)
      })
      callproof.mount(app)
      return app
    })
    try {
      const resource = `${run.origin}/mcp`
      const t = await issuer.mint({ aud: resource, cnf: { jkt: alice.jkt } })
      await fetch(
        resource,
        await provenRequest(resource, { token: t, key: alice, message: toolCall('whoami') }),
      )
      await fetch(resource, await provenRequest(resource, { message: toolCall('whoami') }))
      expect(callers).toEqual([`alice/${alice.jkt}`])
    } finally {
      await run.close()
    }
  })

  it('fails closed with 503 when the replay store cannot record an approval', async () => {
    const real = new MemoryReplayStore()
    const replay = {
      consume: (key: string, expiresAt: number) =>
        key.startsWith('approval:')
          ? Promise.reject(new Error('down'))
          : real.consume(key, expiresAt),
    }
    const s = await setup({ replay })
    try {
      const args = { path: 'd.txt', with: 'bob' }
      const t = await token(s, {
        scope: 'drive:share',
        authorization_details: [
          {
            type: 'mcp_tool_call',
            resource: s.resource,
            tool: 'share',
            args: await argsDigest(args),
          },
        ],
      })
      const response = await s.send({ token: t, key: alice, message: toolCall('share', args) })
      expect(response.status).toBe(503)
      expect(s.seen).not.toContain('share:d.txt:bob')
    } finally {
      await s.run.close()
    }
  })
})

describe('SSE responses', () => {
  it('serves the SDK client over SSE when jsonResponse is off', async () => {
    const s = await setup({ jsonResponse: false })
    try {
      const t = await token(s)
      const client = new Client({ name: 'test', version: '0.0.0' })
      await client.connect(
        new StreamableHTTPClientTransport(new URL(s.resource), {
          fetch: dpopFetch(s.resource, () => t, alice),
        }),
      )
      const result = await client.callTool({ name: 'read', arguments: { path: 'sse' } })
      expect(result.content).toEqual([{ type: 'text', text: 'content of sse' }])
      await client.close()
    } finally {
      await s.run.close()
    }
  })

  it('answers an absurdly long session id with the same 404, without a store lookup', async () => {
    const s = await setup()
    try {
      const t = await token(s)
      const response = await s.send({
        token: t,
        key: alice,
        message: toolCall('whoami'),
        sessionId: 'x'.repeat(5000),
      })
      expect(response.status).toBe(404)
    } finally {
      await s.run.close()
    }
  })
})
