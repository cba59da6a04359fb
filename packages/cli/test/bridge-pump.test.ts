// The bridge's message pump between two in-memory transports (the SDK's own linked pair): ids
// kept, a lost request answered with a JSON-RPC error, a server's words escaped on their way to
// stderr.
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js'
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js'
import { ChallengeError } from '@callproof/client'
import { describe, expect, it } from 'vitest'
import { BRIDGE_ERROR, deliveryError, pump } from '../src/bridge/pump.js'

describe('the bridge pump', () => {
  it('passes messages both ways unchanged, ids included', async () => {
    const [client, local] = InMemoryTransport.createLinkedPair()
    const [remote, server] = InMemoryTransport.createLinkedPair()
    const atServer: JSONRPCMessage[] = []
    const atClient: JSONRPCMessage[] = []
    server.onmessage = (m) => atServer.push(m)
    client.onmessage = (m) => atClient.push(m)
    await server.start()
    await client.start()
    await pump(local, remote, { note: () => undefined })
    const request = { jsonrpc: '2.0' as const, id: 'a-7', method: 'tools/list', params: {} }
    await client.send(request)
    await server.send({ jsonrpc: '2.0', id: 99, method: 'elicitation/create', params: {} })
    await server.send({ jsonrpc: '2.0', id: 'a-7', result: { tools: [] } })
    await client.send({ jsonrpc: '2.0', id: 99, result: { action: 'decline' } })
    await new Promise((r) => setTimeout(r, 10))
    expect(atServer).toEqual([request, { jsonrpc: '2.0', id: 99, result: { action: 'decline' } }])
    expect(atClient).toEqual([
      { jsonrpc: '2.0', id: 99, method: 'elicitation/create', params: {} },
      { jsonrpc: '2.0', id: 'a-7', result: { tools: [] } },
    ])
  })

  it('answers a request the server side could not take with a JSON-RPC error, and goes on', async () => {
    const [client, local] = InMemoryTransport.createLinkedPair()
    const [remote, server] = InMemoryTransport.createLinkedPair()
    await server.start()
    const atClient: JSONRPCMessage[] = []
    client.onmessage = (m) => atClient.push(m)
    await client.start()
    const send = remote.send.bind(remote)
    // The one fault the test cannot cause for real here: the signing transport refusing a call.
    remote.send = (message, options) => {
      if ('method' in message && message.method === 'tools/call') {
        const error = new ChallengeError(
          'ERR_ACCESS_DENIED',
          'denied\u001b[2J by the user',
          403,
          'access_denied',
        )
        remote.onerror?.(error)
        return Promise.reject(error)
      }
      return send(message, options)
    }
    const notes: string[] = []
    await pump(local, remote, { note: (line) => notes.push(line) })
    await client.send({ jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'x' } })
    await new Promise((r) => setTimeout(r, 10))
    expect(atClient).toEqual([
      {
        jsonrpc: '2.0',
        id: 5,
        error: {
          code: BRIDGE_ERROR,
          message: 'callproof bridge: denied\\u{1b}[2J by the user',
          data: { code: 'ERR_ACCESS_DENIED' },
        },
      },
    ])
    expect(notes).toEqual(['callproof bridge: denied\\u{1b}[2J by the user'])
  })

  it('forwards a cancellation, and owes no answer for the cancelled request when it closes', async () => {
    const [client, local] = InMemoryTransport.createLinkedPair()
    const [remote, server] = InMemoryTransport.createLinkedPair()
    const atServer: JSONRPCMessage[] = []
    const atClient: JSONRPCMessage[] = []
    server.onmessage = (m) => atServer.push(m)
    client.onmessage = (m) => atClient.push(m)
    await server.start()
    await client.start()
    const running = await pump(local, remote, { note: () => undefined })
    const cancel = {
      jsonrpc: '2.0' as const,
      method: 'notifications/cancelled',
      params: { requestId: 1, reason: 'user pressed stop' },
    }
    await client.send({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'slow' } })
    await client.send({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'slow' } })
    await client.send(cancel)
    await new Promise((r) => setTimeout(r, 10))
    expect(atServer.at(-1)).toEqual(cancel)
    await server.close()
    await running.closed
    await new Promise((r) => setTimeout(r, 10))
    // Only the request still waiting gets an error when the server side goes away.
    expect(atClient.map((m) => ('id' in m ? m.id : undefined))).toEqual([2])
    expect(atClient[0]).toMatchObject({ error: { code: BRIDGE_ERROR } })
  })

  it('routes a server message to the request it belongs with, for Streamable HTTP', async () => {
    const [client, local] = InMemoryTransport.createLinkedPair()
    const [remote, server] = InMemoryTransport.createLinkedPair()
    const routed: [string, unknown][] = []
    const send = local.send.bind(local)
    local.send = (message, options) => {
      routed.push(['method' in message ? message.method : 'response', options?.relatedRequestId])
      return send(message, options)
    }
    await server.start()
    await client.start()
    await pump(local, remote, { note: () => undefined }, { routeToRequest: true })
    const call = (id: number, progressToken: string) =>
      client.send({
        jsonrpc: '2.0',
        id,
        method: 'tools/call',
        params: { name: 'slow', _meta: { progressToken } },
      })
    await call(1, 'p-1')
    await call(2, 'p-2')
    await new Promise((r) => setTimeout(r, 10))
    await server.send({
      jsonrpc: '2.0',
      method: 'notifications/progress',
      params: { progressToken: 'p-1', progress: 1 },
    })
    await server.send({ jsonrpc: '2.0', id: 7, method: 'elicitation/create', params: {} })
    await server.send({ jsonrpc: '2.0', id: 2, result: {} })
    await server.send({ jsonrpc: '2.0', id: 1, result: {} })
    await server.send({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' })
    await new Promise((r) => setTimeout(r, 10))
    expect(routed).toEqual([
      ['notifications/progress', 1],
      ['elicitation/create', 2],
      ['response', undefined],
      ['response', undefined],
      // Nothing pending: the session's standalone stream.
      ['notifications/tools/list_changed', undefined],
    ])
  })

  it('bounds and escapes what it says about an error', () => {
    const { message } = deliveryError(new Error(`\u202e${'x'.repeat(5000)}`))
    expect(message).not.toContain('\u202e')
    expect(message).toContain('\\u{202e}')
    expect(message.length).toBeLessThan(1100)
    expect(deliveryError(new TypeError('fetch failed')).message).toBe(
      'callproof bridge: cannot reach the callproof server',
    )
  })
})
