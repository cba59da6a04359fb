/**
 * What the tool registry shows a caller (`listingFor`, which the SDK seam's `tools/list` answers
 * with), and the policy helpers it relies on. The SDK seam itself is tested in sdk-v1.test.ts.
 */
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { evaluatePolicy, isAllowedNow } from '@callproof/core'
import type { Caller, ToolPolicy } from '@callproof/core'
import { POLICY_META_KEY, createToolRegistry } from '../src/index.js'
import { listingFor } from '../src/tools.js'

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

describe('listingFor', () => {
  it('hides what the caller can never be granted and publishes the rest with its requirements', () => {
    const tools = registry()
    const listed = listingFor(tools, caller, context)
    expect(listed.map((t) => t.name)).toEqual(['read', 'remove'])
    expect(listed[0]?.meta[POLICY_META_KEY]).toEqual({ scopes: ['drive:read'], stepUp: false })
    expect(listed[1]?.meta[POLICY_META_KEY]).toMatchObject({ stepUp: true })
    const bob = listingFor(tools, { ...caller, sub: 'bob' }, context).map((t) => t.name)
    expect(bob).toEqual(['read', 'remove', 'bob_only'])
  })

  it("keeps a tool's own _meta next to the policy, and lists everything with listing: 'all'", () => {
    const tools = createToolRegistry({ name: 't', version: '0' }, { listing: 'all' })
    const ok = () => ({ content: [] })
    tools.register('a', { _meta: { 'x/y': 1 }, policy: { scopes: ['s'] } }, ok)
    tools.register('b', { policy: { callers: { subjects: ['bob'] } } }, ok)
    const listed = listingFor(tools, caller, context)
    expect(listed.map((t) => t.name)).toEqual(['a', 'b'])
    expect(listed[0]?.meta).toEqual({
      'x/y': 1,
      [POLICY_META_KEY]: { scopes: ['s'], stepUp: true },
    })
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

describe('downstream declarations', () => {
  const ok = () => ({ content: [{ type: 'text' as const, text: 'ok' }] })

  it('publishes the downstream services a tool calls with its requirements', () => {
    const tools = createToolRegistry({ name: 't', version: '0' })
    tools.register('email', { policy: { scopes: ['drive:read'] }, downstream: ['mail'] }, ok)
    const [listed] = listingFor(tools, caller, context)
    expect(listed?.meta[POLICY_META_KEY]).toEqual({
      scopes: ['drive:read'],
      downstream: ['mail'],
      stepUp: false,
    })
  })

  it('refuses a declaration that is not a list of service names, at registration', () => {
    const tools = createToolRegistry({ name: 't', version: '0' })
    for (const downstream of ['mail', [''], [42], ['x'.repeat(65)]]) {
      expect(() =>
        tools.register(
          'email',
          { policy: { public: true }, downstream: downstream as unknown as string[] },
          ok,
        ),
      ).toThrow(/downstream must list service names/)
    }
  })
})
