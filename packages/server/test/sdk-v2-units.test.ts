/**
 * The two checks of the SDK v2 seam in isolation: the `Mcp-Method`/`Mcp-Name` comparison with the
 * proof's binding (which end-to-end can never differ from the body: the verifier refuses such a
 * proof first), and the expiry and key of Multi Round-Trip continuations.
 */
import { describe, expect, it } from 'vitest'
import { CallproofError } from '@callproof/core'
import type { Caller } from '@callproof/core'
import { createContinuations } from '../src/sdk/continuations.js'
import { headerRefusal } from '../src/sdk/mcp-headers.js'

const call = {
  jsonrpc: '2.0',
  id: 1,
  method: 'tools/call',
  params: {
    name: 'read',
    _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' },
  },
}

function request(headers: Record<string, string>): Request {
  return new Request('http://127.0.0.1/mcp', {
    method: 'POST',
    headers: { 'mcp-protocol-version': '2026-07-28', ...headers },
  })
}

describe('headerRefusal', () => {
  const headers = { 'mcp-method': 'tools/call', 'mcp-name': 'read' }

  it('accepts headers that agree with the body and the binding', () => {
    expect(headerRefusal(request(headers), call, { method: 'tools/call', name: 'read' })).toBe(
      undefined,
    )
  })

  it.each([
    ['another method', { method: 'tools/list' }],
    ['another name', { method: 'tools/call', name: 'whoami' }],
    ['no name', { method: 'tools/call' }],
    ['a response', { response: 1 }],
  ])('refuses headers that agree with the body when the binding names %s', (_what, binding) => {
    const refused = headerRefusal(request(headers), call, binding)
    expect(refused).toBeInstanceOf(CallproofError)
    expect(refused?.code).toBe('ERR_HEADER_MISMATCH')
  })

  it('checks a header present on a 2025-11-25 request too, but requires none there', () => {
    const legacy = { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'read' } }
    const plain = new Request('http://127.0.0.1/mcp', { method: 'POST' })
    expect(headerRefusal(plain, legacy, undefined)).toBe(undefined)
    const lying = new Request('http://127.0.0.1/mcp', {
      method: 'POST',
      headers: { 'mcp-name': 'whoami' },
    })
    expect(headerRefusal(lying, legacy, undefined)?.code).toBe('ERR_HEADER_MISMATCH')
  })
})

describe('continuations', () => {
  const alice: Caller = {
    sub: 'alice',
    clientId: 'c',
    jkt: 'k',
    scopes: [],
    tokenId: 't',
  } as unknown as Caller
  const binding = { method: 'tools/call', name: 'confirm', args: 'd' }

  it('opens what it sealed, until it expires', async () => {
    let now = 1_000_000
    const continuations = createContinuations({ ttlSeconds: 60, clock: () => now })
    const wire = await continuations.seal('mine', alice, binding)
    expect(await continuations.open(wire, alice, binding)).toBe('mine')
    now += 61_000
    await expect(continuations.open(wire, alice, binding)).rejects.toMatchObject({
      code: 'ERR_INVALID_CONTINUATION',
    })
  })

  it('does not open a seal of another key (another server), nor a stateless one', async () => {
    const one = createContinuations({ key: new Uint8Array(32).fill(1) })
    const two = createContinuations({ key: new Uint8Array(32).fill(2) })
    const wire = await one.seal(undefined, alice, binding)
    expect(await one.open(wire, alice, binding)).toBe(undefined)
    await expect(two.open(wire, alice, binding)).rejects.toMatchObject({
      code: 'ERR_INVALID_CONTINUATION',
    })
    await expect(one.open('x'.repeat(70_000), alice, binding)).rejects.toMatchObject({
      code: 'ERR_INVALID_CONTINUATION',
    })
  })

  it('refuses a key shorter than 32 bytes at start-up', () => {
    expect(() => createContinuations({ key: new Uint8Array(16) })).toThrow(/32 bytes/)
  })
})
