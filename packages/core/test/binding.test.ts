/** bindingFor / bindingsEqual: the `mcp` claim of every kind of JSON-RPC message. */
import { describe, expect, it } from 'vitest'
import { argsDigest, bindingFor, bindingShape, bindingsEqual } from '../src/index.js'

describe('bindingFor', () => {
  it('binds tools/call and prompts/get to method, name and argument digest', async () => {
    const args = { path: 'a.txt', with: 'bob' }
    expect(
      await bindingFor({
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/call',
        params: { name: 'share_file', arguments: args },
      }),
    ).toEqual({ method: 'tools/call', name: 'share_file', args: await argsDigest(args) })
    expect(
      await bindingFor({ jsonrpc: '2.0', id: 'p', method: 'prompts/get', params: { name: 'p1' } }),
    ).toEqual({
      method: 'prompts/get',
      name: 'p1',
      args: await argsDigest({}),
    })
  })

  it('binds resources/read and subscriptions to their uri', async () => {
    for (const method of ['resources/read', 'resources/subscribe', 'resources/unsubscribe']) {
      expect(
        await bindingFor({ jsonrpc: '2.0', id: 2, method, params: { uri: 'file:///a' } }),
      ).toEqual({
        method,
        name: 'file:///a',
      })
    }
  })

  it('binds initialize, notifications and other requests to the method only', async () => {
    expect(
      await bindingFor({
        jsonrpc: '2.0',
        id: 0,
        method: 'initialize',
        params: { protocolVersion: 'x', capabilities: {} },
      }),
    ).toEqual({ method: 'initialize' })
    expect(await bindingFor({ jsonrpc: '2.0', method: 'notifications/initialized' })).toEqual({
      method: 'notifications/initialized',
    })
    // A notification named like a tool call still binds the method only (it has no id).
    expect(
      await bindingFor({ jsonrpc: '2.0', method: 'tools/call', params: { name: 'x' } }),
    ).toEqual({ method: 'tools/call' })
    expect(await bindingFor({ jsonrpc: '2.0', id: 3, method: 'tools/list' })).toEqual({
      method: 'tools/list',
    })
  })

  it('binds responses and errors to their id, type preserved', async () => {
    expect(await bindingFor({ jsonrpc: '2.0', id: 7, result: {} })).toEqual({ response: 7 })
    expect(
      await bindingFor({ jsonrpc: '2.0', id: '7', error: { code: -1, message: 'x' } }),
    ).toEqual({ response: '7' })
  })

  it('refuses a batch with ERR_BATCH_NOT_SUPPORTED', async () => {
    await expect(bindingFor([{ jsonrpc: '2.0', id: 1, method: 'ping' }])).rejects.toMatchObject({
      code: 'ERR_BATCH_NOT_SUPPORTED',
    })
  })

  it.each([
    ['a string', 'tools/call'],
    ['null', null],
    ['no jsonrpc', { id: 1, method: 'ping' }],
    ['jsonrpc 1.0', { jsonrpc: '1.0', id: 1, method: 'ping' }],
    ['an empty method', { jsonrpc: '2.0', id: 1, method: '' }],
    ['a non-string method', { jsonrpc: '2.0', id: 1, method: 5 }],
    ['an object id', { jsonrpc: '2.0', id: {}, method: 'ping' }],
    ['params that are an array', { jsonrpc: '2.0', id: 1, method: 'tools/call', params: ['x'] }],
    ['tools/call without a name', { jsonrpc: '2.0', id: 1, method: 'tools/call', params: {} }],
    [
      'tools/call with a numeric name',
      { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 1 } },
    ],
    ['resources/read without uri', { jsonrpc: '2.0', id: 1, method: 'resources/read', params: {} }],
    ['a response with a null id', { jsonrpc: '2.0', id: null, result: {} }],
    ['neither request nor response', { jsonrpc: '2.0', id: 1 }],
    [
      'arguments with a lone surrogate',
      {
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/call',
        params: { name: 'x', arguments: { a: '\ud800' } },
      },
    ],
  ])('refuses %s with ERR_MALFORMED_BODY', async (_, message) => {
    await expect(bindingFor(message)).rejects.toMatchObject({ code: 'ERR_MALFORMED_BODY' })
  })
})

describe('bindingShape', () => {
  const malformedMessages: unknown[] = [
    [{ jsonrpc: '2.0', id: 1, method: 'tools/list' }],
    null,
    'x',
    {},
    { jsonrpc: '1.0', id: 1, method: 'tools/list' },
    { jsonrpc: '2.0', id: {}, method: 'tools/list' },
    { jsonrpc: '2.0', id: 1, method: '' },
    { jsonrpc: '2.0', id: 1, method: 'tools/call', params: [] },
    { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 7 } },
    { jsonrpc: '2.0', id: 1, method: 'resources/read', params: {} },
    { jsonrpc: '2.0', id: 1 },
  ]

  it('refuses exactly what bindingFor refuses for the shape of a message, with the same code', async () => {
    for (const message of malformedMessages) {
      const viaBinding = await bindingFor(message).then(
        () => undefined,
        (e: { code: string }) => e.code,
      )
      expect(viaBinding, JSON.stringify(message)).toMatch(
        /^ERR_(MALFORMED_BODY|BATCH_NOT_SUPPORTED)$/,
      )
      expect(() => bindingShape(message), JSON.stringify(message)).toThrow(
        expect.objectContaining({ code: viaBinding }),
      )
    }
  })

  it('is the binding without args, and never canonicalises the arguments', async () => {
    const call = {
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: { name: 'read_file', arguments: { path: 'a' } },
    }
    const { args, ...rest } = (await bindingFor(call)) as { args?: string }
    expect(args).toBe(await argsDigest({ path: 'a' }))
    expect(bindingShape(call)).toEqual(rest)
    // Arguments JCS cannot carry: bindingFor refuses them (it digests), bindingShape does not look.
    const undigestible = JSON.parse(
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"s":"\\ud800"}}}',
    ) as unknown
    await expect(bindingFor(undigestible)).rejects.toMatchObject({ code: 'ERR_MALFORMED_BODY' })
    expect(bindingShape(undigestible)).toEqual({ method: 'tools/call', name: 'x' })
    expect(bindingShape({ jsonrpc: '2.0', id: 2, result: {} })).toEqual({ response: 2 })
  })
})

describe('bindingsEqual', () => {
  const binding = { method: 'tools/call', name: 'read_file', args: 'abc' }
  it('accepts exactly the same members', () => {
    expect(bindingsEqual({ args: 'abc', name: 'read_file', method: 'tools/call' }, binding)).toBe(
      true,
    )
    expect(bindingsEqual({ response: 1 }, { response: 1 })).toBe(true)
  })
  it('refuses any difference: value, missing member, extra member, type, shape', () => {
    expect(bindingsEqual({ ...binding, args: 'abd' }, binding)).toBe(false)
    expect(bindingsEqual({ ...binding, name: 'delete_file' }, binding)).toBe(false)
    expect(bindingsEqual({ method: 'tools/call', name: 'read_file' }, binding)).toBe(false)
    expect(bindingsEqual({ ...binding, extra: 1 }, binding)).toBe(false)
    expect(bindingsEqual({ method: 'initialize', args: 'x' }, { method: 'initialize' })).toBe(false)
    expect(bindingsEqual({ response: '1' }, { response: 1 })).toBe(false)
    expect(bindingsEqual(undefined, binding)).toBe(false)
    expect(bindingsEqual([binding], binding)).toBe(false)
    expect(bindingsEqual('tools/call', binding)).toBe(false)
  })
})

describe('bindingMismatch', () => {
  it('names both digests when only the arguments differ, and says what differs otherwise', async () => {
    const { bindingMismatch } = await import('../src/binding.js')
    const proof = { method: 'tools/call', name: 'delete_file', args: 'AAAAAAAAAAAAAAAA' }
    const body = { method: 'tools/call', name: 'delete_file', args: 'BBBBBBBBBBBBBBBB' }
    expect(bindingMismatch(proof, body)).toBe(
      "proof binds tools/call delete_file with other arguments (args digest AAAAAAAAAA..., the body's BBBBBBBBBB...): the body changed after it was signed",
    )
    expect(bindingMismatch({ ...proof, name: 'read_file' }, body)).toBe(
      'proof binds tools/call read_file (args digest) but the body is tools/call delete_file (args digest)',
    )
    // Untrusted names are cut, in ASCII (the reason may travel in WWW-Authenticate).
    const long = bindingMismatch({ ...proof, name: 'x'.repeat(500) }, body)
    expect(long.length).toBeLessThan(200)
    expect(long).toMatch(/^[\x20-\x7e]+$/)
  })
})
