// The 2026-07-28 routing headers (SEP-2243) and the proof: the proof fetch signs a request only
// when its Mcp-Method / Mcp-Name headers name the call its body (which the proof binds) makes.
// The request goes to a recording HTTP server on 127.0.0.1; a refused request never reaches it.
// The last test drives the real SDK v2 client whose transport was given a stray header.
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
import { decodeJwt, decodeProtectedHeader } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  CallproofClientError,
  createCallproofFetch,
  generateProofKeyPair,
  sendWithProof,
  type ProofSigner,
  type TokenSet,
} from '../src/v2.js'
import { devInteraction } from '@callproof/dev-auth-server'
import { startFake, type Fake } from './support/fake.js'

let fake: Fake
let signer: ProofSigner
let token: TokenSet
beforeAll(async () => {
  fake = await startFake({ 'POST /mcp': () => ({ body: { jsonrpc: '2.0', id: 1, result: {} } }) })
  signer = { keyPair: await generateProofKeyPair() }
  token = {
    accessToken: 'at',
    tokenType: 'dpop',
    scopes: [],
    issuer: 'http://127.0.0.1:1',
    resource: `${fake.origin}/mcp`,
  }
})
afterAll(() => fake?.close())

const call = (name: string, args: unknown = {}) =>
  JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: args } })

async function post(body: string, headers: Record<string, string>) {
  const before = fake.requests.length
  try {
    const response = await sendWithProof(
      signer,
      `${fake.origin}/mcp`,
      { method: 'POST', body, headers },
      token,
    )
    await response.body?.cancel()
    const sent = fake.requests.at(-1)!
    const proof = decodeJwt(sent.headers.dpop as string) as {
      mcp?: { method: string; name?: string }
    }
    return { sent: fake.requests.length - before, mcp: proof.mcp, error: undefined }
  } catch (error) {
    return { sent: fake.requests.length - before, mcp: undefined, error: error as Error }
  }
}

describe('Mcp-Method / Mcp-Name against the body the proof binds', () => {
  it('signs agreeing headers, and the proof names the same call', async () => {
    const r = await post(call('read_note'), { 'mcp-method': 'tools/call', 'mcp-name': 'read_note' })
    expect(r.error).toBeUndefined()
    expect(r.mcp).toMatchObject({ method: 'tools/call', name: 'read_note' })
  })

  it('signs a request without the headers (SDK v1, 2025-11-25) as before', async () => {
    const r = await post(call('read_note'), {})
    expect(r.error).toBeUndefined()
    expect(r.mcp).toMatchObject({ method: 'tools/call', name: 'read_note' })
  })

  it('refuses an Mcp-Name naming another tool than the body, before sending', async () => {
    const r = await post(call('delete_note'), {
      'mcp-method': 'tools/call',
      'mcp-name': 'read_note',
    })
    expect(r.error).toBeInstanceOf(CallproofClientError)
    expect((r.error as CallproofClientError).code).toBe('ERR_BINDING_MISMATCH')
    expect(r.sent).toBe(0)
  })

  it('a relaying proxy (relayRoutingHeaders) passes mismatched headers on for the server to check, the proof still binding the body', async () => {
    const relaying = { keyPair: signer.keyPair, relayRoutingHeaders: true }
    const before = fake.requests.length
    const response = await sendWithProof(
      relaying,
      `${fake.origin}/mcp`,
      {
        method: 'POST',
        body: call('delete_note'),
        headers: { 'mcp-method': 'tools/call', 'mcp-name': 'read_note' },
      },
      token,
    )
    await response.body?.cancel()
    expect(fake.requests.length - before).toBe(1)
    const sent = fake.requests.at(-1)!
    expect(sent.headers['mcp-name']).toBe('read_note')
    expect(decodeJwt(sent.headers.dpop as string)).toMatchObject({
      mcp: { method: 'tools/call', name: 'delete_note' },
    })
  })

  it('refuses an Mcp-Method naming another method than the body, before sending', async () => {
    const r = await post(call('delete_note'), { 'mcp-method': 'tools/list' })
    expect((r.error as CallproofClientError).code).toBe('ERR_BINDING_MISMATCH')
    expect(r.sent).toBe(0)
  })

  it('refuses an Mcp-Name on a request whose body names nothing', async () => {
    const body = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' })
    const r = await post(body, { 'mcp-method': 'tools/list', 'mcp-name': 'read_note' })
    expect((r.error as CallproofClientError).code).toBe('ERR_BINDING_MISMATCH')
    expect(r.sent).toBe(0)
  })

  it('refuses an Mcp-Name whose base64 form does not decode, even where the body names nothing', async () => {
    const body = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' })
    const r = await post(body, { 'mcp-method': 'tools/list', 'mcp-name': '=?base64?@@@?=' })
    expect((r.error as CallproofClientError).code).toBe('ERR_BINDING_MISMATCH')
    expect(r.sent).toBe(0)
  })

  it('reads a base64-encoded Mcp-Name (non-ASCII resource URI) and compares the decoded value', async () => {
    const uri = 'file:///notes/été.txt'
    const body = JSON.stringify({
      jsonrpc: '2.0',
      id: 3,
      method: 'resources/read',
      params: { uri },
    })
    const encoded = `=?base64?${Buffer.from(uri, 'utf8').toString('base64')}?=`
    const ok = await post(body, { 'mcp-method': 'resources/read', 'mcp-name': encoded })
    expect(ok.error).toBeUndefined()
    expect(ok.mcp).toMatchObject({ method: 'resources/read', name: uri })
    const other = `=?base64?${Buffer.from('file:///notes/other.txt').toString('base64')}?=`
    const bad = await post(body, { 'mcp-method': 'resources/read', 'mcp-name': other })
    expect((bad.error as CallproofClientError).code).toBe('ERR_BINDING_MISMATCH')
    expect(bad.sent).toBe(0)
  })

  it('bounds and quotes a header value in its message', async () => {
    const r = await post(call('delete_note'), {
      'mcp-name': `x${'\u001b[31m'.repeat(2)}${'y'.repeat(200)}`,
    })
    const message = (r.error as Error).message
    expect(message).not.toContain('\u001b')
    expect(message.length).toBeLessThan(400)
    // The JWS header stays untouched by any of this: the key is still the signer's.
    const good = await post(call('a'), {})
    expect(good.error).toBeUndefined()
    expect(decodeProtectedHeader(fake.requests.at(-1)!.headers.dpop as string).typ).toBe('dpop+jwt')
  })
})

describe('the real SDK v2 client with a stray routing header', () => {
  it('never signs (or sends) its requests', async () => {
    const before = fake.requests.length
    const { fetch, session } = await createCallproofFetch(`${fake.origin}/mcp`, {
      interaction: devInteraction({ user: 'alice' }),
      development: true,
    })
    const client = new Client({ name: 't', version: '1' })
    const transport = new StreamableHTTPClientTransport(new URL(`${fake.origin}/mcp`), {
      fetch,
      // A header set for every request (by a misconfigured wrapper): it names a tool the body does not.
      requestInit: { headers: { 'Mcp-Name': 'write_note' } },
    })
    await expect(client.connect(transport)).rejects.toThrow(/Mcp-Name/)
    expect(fake.requests.length).toBe(before)
    await session.close()
  })
})
