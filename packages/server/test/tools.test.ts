/**
 * The per-request `McpServer` of the tool registry: what it costs (one shared JSON Schema
 * validator, the policy `_meta` only for `tools/list`) without changing what it serves.
 */
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { evaluatePolicy, isAllowedNow } from '@callproof/core'
import type { Caller, ToolPolicy } from '@callproof/core'
import { POLICY_META_KEY, createToolRegistry } from '../src/index.js'

const caller: Caller = {
  sub: 'alice',
  clientId: 'c1',
  jkt: 'jkt',
  tokenId: 't1',
  scopes: ['drive:read'],
  acr: 'urn:callproof:acr:pwd',
  authTime: 1_000,
}
const context = { resource: 'http://127.0.0.1:1/mcp', now: 1_100_000 }

function registry() {
  const tools = createToolRegistry({ name: 't', version: '0' })
  const ok = () => ({ content: [{ type: 'text' as const, text: 'ok' }] })
  tools.register(
    'read',
    { inputSchema: { path: z.string() }, policy: { scopes: ['drive:read'] } },
    ok,
  )
  tools.register('remove', { policy: { scopes: ['drive:write'], acr: ['mfa'], maxAge: 60 } }, ok)
  tools.register('bob_only', { policy: { callers: { subjects: ['bob'] } } }, ok)
  return tools
}

/** The SDK keeps registered tools in a private field; read it to see what a server holds. */
function registered(server: McpServer): Record<string, { _meta?: Record<string, unknown> }> {
  return (
    server as unknown as { _registeredTools: Record<string, { _meta?: Record<string, unknown> }> }
  )._registeredTools
}

function validatorOf(server: McpServer): unknown {
  return (server.server as unknown as { _jsonSchemaValidator: unknown })._jsonSchemaValidator
}

describe('ToolRegistry.serverFor', () => {
  it('shares one JSON Schema validator between the per-request servers', () => {
    const tools = registry()
    const a = tools.serverFor(caller, context)
    const b = tools.serverFor(caller, { ...context, method: 'tools/call' })
    expect(validatorOf(a)).toBeDefined()
    expect(validatorOf(a)).toBe(validatorOf(b))
  })

  it('computes the per-caller policy _meta for tools/list only, and serves the same tools', () => {
    const tools = registry()
    const list = registered(tools.serverFor(caller, { ...context, method: 'tools/list' }))
    const call = registered(tools.serverFor(caller, { ...context, method: 'tools/call' }))
    const unspecified = registered(tools.serverFor(caller, context))
    expect(Object.keys(list).sort()).toEqual(['read', 'remove'])
    expect(Object.keys(call).sort()).toEqual(['read', 'remove'])
    expect(list['read']?._meta?.[POLICY_META_KEY]).toEqual({
      scopes: ['drive:read'],
      stepUp: false,
    })
    expect(list['remove']?._meta?.[POLICY_META_KEY]).toMatchObject({ stepUp: true })
    expect(unspecified['remove']?._meta?.[POLICY_META_KEY]).toMatchObject({ stepUp: true })
    expect(call['read']?._meta?.[POLICY_META_KEY]).toBeUndefined()
    expect(call['remove']?._meta?.[POLICY_META_KEY]).toBeUndefined()
  })
})

describe('isAllowedNow', () => {
  it('answers exactly as evaluatePolicy(...).allow', () => {
    const policies: (ToolPolicy | undefined)[] = [
      undefined,
      {},
      { public: true },
      { scopes: ['drive:read'] },
      { scopes: ['drive:read', 'drive:write'] },
      { acr: ['urn:callproof:acr:pwd'] },
      { acr: ['mfa'] },
      { maxAge: 200 },
      { maxAge: 50 },
      { callers: { subjects: ['bob'] } },
      { callers: { clientIds: ['c1'], subjects: ['alice'] } },
      { approval: 'per-call' },
    ]
    const details = [
      undefined,
      [{ type: 'mcp_tool_call', resource: context.resource, tool: 'x', args: 'd' }],
      [{ type: 'mcp_tool_call', resource: context.resource, tool: 'x', args: 'other' }],
      [
        { type: 'mcp_tool_call', resource: context.resource, tool: 'x', args: 'd' },
        { type: 'mcp_tool_call', resource: context.resource, tool: 'x', args: 'd' },
      ],
    ]
    let allowedSome = false
    let refusedSome = false
    for (const policy of policies) {
      for (const authorizationDetails of details) {
        const input = { caller, tool: 'x', argsDigest: 'd', ...context, authorizationDetails }
        const expected = evaluatePolicy(policy, input).allow
        expect(isAllowedNow(policy, input), JSON.stringify({ policy, authorizationDetails })).toBe(
          expected,
        )
        if (expected) allowedSome = true
        else refusedSome = true
      }
    }
    expect(allowedSome && refusedSome).toBe(true)
  })
})
