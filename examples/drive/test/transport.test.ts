/**
 * The HTTP transport around the calls: batches, body size, sessions bound to their caller, the
 * binding of initialize and notifications, GET/DELETE proofs, Origin checks, and the RFC 9728
 * metadata document every challenge points at.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  SDK_LINE,
  bindingMismatch,
  expectChallenge,
  startFixture,
  uniquePath,
} from './support/drive.js'
import type { Fixture } from './support/drive.js'
import { rawHttp } from './support/http.js'
import { rpc, toolCall, toolText } from './support/mcp.js'

let fx: Fixture
beforeAll(async () => {
  fx = await startFixture()
})
afterAll(async () => {
  await fx?.close()
})

describe('batches and body size', () => {
  it('a JSON-RPC batch is refused with 400 even without credentials, nothing runs', async () => {
    const path = uniquePath('batch')
    const batch = JSON.stringify([toolCall('write_file', { path, content: 'x' })])
    const bare = await rawHttp({
      method: 'POST',
      url: fx.url,
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: batch,
    })
    expect(bare.status, bare.text).toBe(400)
    expect((bare.json as { code?: string }).code).toBe('ERR_BATCH_NOT_SUPPORTED')
    expect(bare.headers.get('www-authenticate')).toBeNull()
    // With honest credentials and a proof bound to the (only) message: still 400.
    const c = await fx.caller()
    await c.connect()
    const msg = toolCall('write_file', { path, content: 'x' })
    const proof = await c.proofFor('POST', msg)
    const withCreds = await c.send(msg, { proof, rawBody: JSON.stringify([msg]) })
    expect(withCreds.status, withCreds.text).toBe(400)
    const empty = await c.send(msg, { rawBody: '[]' })
    expect(empty.status).toBe(400)
    expect(await fx.file('alice', path)).toBeUndefined()
    // Control: the same message alone, honest proof, runs.
    toolText(await c.send(msg, { proof }))
    expect(await fx.read('alice', path)).toBe('x')
  })

  it('a body over 1 MiB is refused with 413, not written; a 512 KiB body is fine', async () => {
    const c = await fx.caller()
    await c.connect()
    const path = uniquePath('big')
    const big = toolCall('write_file', { path, content: 'a'.repeat(1024 * 1024 + 1) })
    const answer = await c.send(big)
    expect(answer.status, answer.text.slice(0, 200)).toBe(413)
    expect((answer.json as { code?: string }).code).toBe('ERR_BODY_TOO_LARGE')
    expect(await fx.file('alice', path)).toBeUndefined()
    // Without credentials too: the size limit comes before anything is parsed.
    const bare = await c.send(big, { authorization: null, proof: null })
    expect([401, 413]).toContain(bare.status)
    expect(await fx.file('alice', path)).toBeUndefined()
    const ok = toolCall('write_file', { path, content: 'a'.repeat(512 * 1024) })
    toolText(await c.send(ok))
    expect((await fx.file('alice', path))?.size).toBe(512 * 1024)
  })

  it('the limit is exactly 1 MiB: 1,048,576 bytes pass, 1,048,577 bytes are refused', async () => {
    const c = await fx.caller()
    await c.connect()
    const limit = 1024 * 1024
    const path = uniquePath('edge')
    const msg = toolCall('write_file', { path, content: 'e'.repeat(1000) })
    // Pad with JSON whitespace: same parsed message, so the same binding, only the size differs.
    const json = JSON.stringify(msg)
    const over = await c.send(msg, { rawBody: json + ' '.repeat(limit + 1 - json.length) })
    expect(over.status).toBe(413)
    expect(await fx.file('alice', path)).toBeUndefined()
    const exact = await c.send(msg, { rawBody: json + ' '.repeat(limit - json.length) })
    toolText(exact)
    expect((await fx.file('alice', path))?.size).toBe(1000)
  })

  it('a body over 1 MiB without Content-Length (chunked) is refused with 413', async () => {
    const c = await fx.caller()
    await c.connect()
    const path = uniquePath('chunked')
    const body = JSON.stringify(toolCall('write_file', { path, content: 'b'.repeat(1100 * 1024) }))
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        const bytes = new TextEncoder().encode(body)
        for (let i = 0; i < bytes.length; i += 65536) controller.enqueue(bytes.slice(i, i + 65536))
        controller.close()
      },
    })
    const proof = await c.proofFor('POST', JSON.parse(body) as Record<string, unknown>)
    const res = await fetch(fx.url, {
      method: 'POST',
      headers: {
        authorization: `DPoP ${c.token}`,
        dpop: proof,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-session-id': c.sessionId!,
        'mcp-protocol-version': c.protocolVersion,
      },
      body: stream,
      duplex: 'half',
    } as RequestInit)
    expect(res.status).toBe(413)
    await res.body?.cancel()
    expect(await fx.file('alice', path)).toBeUndefined()
  })
})

describe('sessions', () => {
  it("another caller on alice's session gets 404, the same answer as an unknown session", async () => {
    const alice = await fx.caller()
    await alice.connect()
    const mallory = await fx.caller({ sub: 'mallory' })
    const path = uniquePath('hijack')
    const onAlice = await mallory.send(toolCall('write_file', { path, content: 'x' }), {
      sessionId: alice.sessionId!,
    })
    const unknown = await mallory.send(toolCall('write_file', { path, content: 'x' }), {
      sessionId: crypto.randomUUID(),
    })
    expect(onAlice.status).toBe(404)
    expect((onAlice.json as { code?: string }).code).toBe('ERR_SESSION_NOT_FOUND')
    expect(unknown.status).toBe(404)
    const shape = (a: typeof onAlice) => {
      const j = a.json as Record<string, unknown> | undefined
      return JSON.stringify(j === undefined ? a.text : { ...j, id: undefined })
    }
    expect(shape(onAlice)).toBe(shape(unknown))
    expect(onAlice.headers.get('www-authenticate')).toBe(unknown.headers.get('www-authenticate'))
    expect(await fx.file('alice', path)).toBeUndefined()
    expect(await fx.file('mallory', path)).toBeUndefined()
  })

  it('the same subject with another key (another client instance) cannot use the session', async () => {
    const alice = await fx.caller()
    await alice.connect()
    const alice2 = await fx.caller()
    const path = uniquePath('samesub')
    const answer = await alice2.send(toolCall('write_file', { path, content: 'x' }), {
      sessionId: alice.sessionId!,
    })
    expect(answer.status).toBe(404)
    const otherClient = await fx.caller({ clientId: 'another-app' }, alice.key)
    const answer2 = await otherClient.send(toolCall('write_file', { path, content: 'x' }), {
      sessionId: alice.sessionId!,
    })
    expect(answer2.status).toBe(404)
    expect(await fx.file('alice', path)).toBeUndefined()
    // Control: alice on her own session.
    toolText(await alice.send(toolCall('write_file', { path, content: 'mine' })))
    expect(await fx.read('alice', path)).toBe('mine')
  })

  it('a new token of the same caller (same sub, client, key) keeps working on the session', async () => {
    const alice = await fx.caller()
    await alice.connect()
    const renewed = await fx.token(alice.key)
    const who = JSON.parse(toolText(await alice.callTool('whoami', {}, { token: renewed }))) as {
      sub: string
    }
    expect(who.sub).toBe('alice')
  })
})

describe('initialize and notification binding', () => {
  const initialize = () =>
    rpc('initialize', {
      protocolVersion: '2025-11-25',
      capabilities: {},
      clientInfo: { name: 't', version: '0' },
    })

  it('initialize binds { method: "initialize" } only', async () => {
    const c = await fx.caller()
    for (const mcp of [
      undefined,
      { method: 'tools/call', name: 'whoami', args: 'x' },
      { method: 'tools/list' },
      { method: 'initialize', name: 'x' },
      { response: 1 },
    ]) {
      const answer = await c.send(initialize(), { proofInput: { mcp }, sessionId: null })
      expectChallenge(fx, answer, bindingMismatch)
      expect(answer.headers.get('mcp-session-id')).toBeNull()
    }
    const ok = await c.send(initialize(), { sessionId: null })
    expect(ok.status).toBe(200)
    expect(ok.headers.get('mcp-session-id')).toBeTruthy()
  })

  it('notifications/initialized binds its method; a wrong binding is refused', async () => {
    const c = await fx.caller()
    const init = await c.send(initialize(), { sessionId: null })
    c.sessionId = init.headers.get('mcp-session-id') ?? undefined
    const note = { jsonrpc: '2.0', method: 'notifications/initialized' }
    expectChallenge(
      fx,
      await c.send(note, { proofInput: { mcp: { method: 'initialize' } } }),
      bindingMismatch,
    )
    expectChallenge(fx, await c.send(note, { proofInput: { mcp: undefined } }), bindingMismatch)
    expect((await c.send(note)).status).toBe(202)
  })
})

describe('JSON-RPC responses bind { response: id }', () => {
  it('a response body is accepted with its own id (JSON type preserved) and refused otherwise', async () => {
    const c = await fx.caller()
    await c.connect()
    const body = { jsonrpc: '2.0', id: 7, result: {} }
    for (const mcp of [{ response: '7' }, { response: 8 }, { method: 'tools/call' }]) {
      expectChallenge(fx, await c.send(body, { proofInput: { mcp } }), bindingMismatch)
    }
    const ok = await c.send(body, { proofInput: { mcp: { response: 7 } } })
    expect(ok.status).toBeLessThan(300)
  })
})

describe('GET and DELETE', () => {
  it('a GET proof that carries an mcp claim is refused; a plain GET proof passes verification', async () => {
    const c = await fx.caller()
    await c.connect()
    const bad = await c.send(undefined, {
      method: 'GET',
      proofInput: { mcp: { method: 'tools/call', name: 'whoami', args: 'x' } },
    })
    expectChallenge(fx, bad, bindingMismatch)
    const controller = new AbortController()
    const res = await fetch(fx.url, {
      method: 'GET',
      headers: {
        authorization: `DPoP ${c.token}`,
        dpop: await c.proofFor('GET', undefined),
        accept: 'text/event-stream',
        'mcp-session-id': c.sessionId!,
        'mcp-protocol-version': c.protocolVersion,
      },
      signal: controller.signal,
    })
    // docs/protocol.md §8: a server without a standalone stream answers a verified GET with 405
    // (MCP Streamable HTTP allows it); either way the request got past the proof checks.
    expect([200, 405]).toContain(res.status)
    expect(res.headers.get('www-authenticate')).toBeNull()
    controller.abort()
    await res.body?.cancel().catch(() => undefined)
  })

  it('a DELETE proof with an mcp claim is refused and the session survives; a plain one ends it', async () => {
    const c = await fx.caller()
    await c.connect()
    const bad = await c.send(undefined, {
      method: 'DELETE',
      proofInput: { mcp: { method: 'DELETE' } },
    })
    expectChallenge(fx, bad, bindingMismatch)
    toolText(await c.callTool('whoami'))
    const ok = await c.send(undefined, { method: 'DELETE' })
    expect(ok.status).toBe(200)
    const after = await c.send(toolCall('whoami'))
    expect(after.status).toBe(404)
  })

  it("DELETE of another caller's session is 404 and the session survives", async () => {
    const alice = await fx.caller()
    await alice.connect()
    const mallory = await fx.caller({ sub: 'mallory' })
    const answer = await mallory.send(undefined, { method: 'DELETE', sessionId: alice.sessionId! })
    expect(answer.status).toBe(404)
    toolText(await alice.callTool('whoami'))
  })
})

describe('origin and metadata', () => {
  it('a request from a foreign browser Origin is refused with 403 (DNS rebinding), nothing runs', async () => {
    const c = await fx.caller()
    await c.connect()
    const path = uniquePath('origin')
    const answer = await c.send(toolCall('write_file', { path, content: 'x' }), {
      headers: { origin: 'http://evil.example' },
    })
    expect(answer.status).toBe(403)
    expect(answer.headers.get('www-authenticate')).toBeNull()
    // A sandboxed or file:// page sends `Origin: null`: not an allowed origin either.
    const nullOrigin = await c.send(toolCall('write_file', { path, content: 'x' }), {
      headers: { origin: 'null' },
    })
    expect(nullOrigin.status).toBe(403)
    expect(await fx.file('alice', path)).toBeUndefined()
    // Control: the drive's own origin is fine.
    toolText(
      await c.send(toolCall('write_file', { path, content: 'y' }), {
        headers: { origin: fx.origin },
      }),
    )
  })

  it('a foreign Host header is refused (DNS rebinding), nothing runs', async () => {
    const c = await fx.caller()
    await c.connect()
    const path = uniquePath('host')
    const msg = toolCall('write_file', { path, content: 'x' })
    const answer = await rawHttp({
      method: 'POST',
      url: fx.url,
      headers: {
        host: 'evil.example',
        authorization: `DPoP ${c.token}`,
        dpop: await c.proofFor('POST', msg),
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-session-id': c.sessionId!,
        'mcp-protocol-version': c.protocolVersion,
      },
      body: JSON.stringify(msg),
    })
    expect(answer.status).toBeGreaterThanOrEqual(400)
    expect(answer.status).toBeLessThan(500)
    expect(await fx.file('alice', path)).toBeUndefined()
  })

  it('serves the RFC 9728 document every challenge points at', async () => {
    const res = await fetch(fx.metadataUrl)
    expect(res.status).toBe(200)
    const doc = (await res.json()) as Record<string, unknown>
    expect(doc.resource).toBe(fx.resource)
    expect(doc.authorization_servers).toEqual([fx.issuer.url])
    expect(doc.dpop_bound_access_tokens_required).toBe(true)
    expect(doc.dpop_signing_alg_values_supported).toEqual(expect.arrayContaining(['ES256']))
    expect(doc.scopes_supported).toEqual(
      expect.arrayContaining(['drive:read', 'drive:write', 'drive:share']),
    )
  })

  it('the resource is the MCP URL on 127.0.0.1', () => {
    expect(fx.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mcp$/)
    expect(fx.resource).toBe(fx.url)
  })
})

describe(`MCP 2026-07-28 (this run: SDK ${SDK_LINE})`, () => {
  const envelope = {
    'io.modelcontextprotocol/protocolVersion': '2026-07-28',
    'io.modelcontextprotocol/clientCapabilities': {},
  }
  const modernHeaders = (name: string) => ({
    'mcp-protocol-version': '2026-07-28',
    'mcp-method': 'tools/call',
    'mcp-name': name,
  })

  it('is served statelessly on SDK v2 (no initialize, no session) and refused on v1', async () => {
    const c = await fx.caller()
    const message = rpc('tools/call', { name: 'list_files', arguments: {}, _meta: envelope })
    const answer = await c.send(message, { headers: modernHeaders('list_files') })
    if (SDK_LINE === 'v2') {
      expect(answer.status, answer.text).toBe(200)
      expect(answer.headers.get('mcp-session-id')).toBeNull()
      expect(JSON.parse(toolText(answer))).toEqual(expect.any(Array))
    } else {
      expect(answer.status, answer.text).toBe(400)
      expect((answer.json as { code?: string }).code).toBe('ERR_UNSUPPORTED_PROTOCOL_VERSION')
    }
  })

  it('a write whose Mcp-Name header names another tool is refused with 400 and writes nothing', async () => {
    const path = uniquePath('mcp-name')
    const c = await fx.caller()
    const message = rpc('tools/call', {
      name: 'write_file',
      arguments: { path, content: 'x' },
      _meta: envelope,
    })
    const answer = await c.send(message, { headers: modernHeaders('read_file') })
    expect(answer.status, answer.text).toBe(400)
    // v2: the SDK's own HeaderMismatch error; v1 does not speak 2026-07-28 at all.
    if (SDK_LINE === 'v2') {
      expect(answer.json).toMatchObject({
        error: { code: -32020, data: { callproof: 'ERR_HEADER_MISMATCH' } },
      })
    } else {
      expect((answer.json as { code?: string }).code).toBe('ERR_UNSUPPORTED_PROTOCOL_VERSION')
    }
    expect(await fx.file('alice', path)).toBeUndefined()
  })
})
