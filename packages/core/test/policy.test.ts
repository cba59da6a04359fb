/** evaluatePolicy / canEverBeGranted / assertValidPolicy: every decision and its reason. */
import { describe, expect, it } from 'vitest'
import {
  InsufficientScopeError,
  InsufficientUserAuthenticationError,
  assertValidPolicy,
  canEverBeGranted,
  evaluatePolicy,
  toHttpAnswer,
} from '../src/index.js'
import type { Caller, PolicyInput, ToolPolicy, ApprovalRequiredError } from '../src/index.js'
import { NOW, NOW_MS, RESOURCE } from './helpers.js'

const caller: Caller = {
  sub: 'alice',
  clientId: 'client-1',
  jkt: 'jkt',
  acr: 'urn:callproof:acr:pwd',
  authTime: NOW - 600,
  tokenId: 'tok-1',
  scopes: ['drive:read'],
}
const input = (extra: Partial<PolicyInput> = {}): PolicyInput => ({
  caller,
  tool: 'share_file',
  argsDigest: 'digest-1',
  resource: RESOURCE,
  now: NOW_MS,
  ...extra,
})
const approval = (extra: Record<string, unknown> = {}) => ({
  type: 'mcp_tool_call',
  resource: RESOURCE,
  tool: 'share_file',
  args: 'digest-1',
  ...extra,
})

describe('evaluatePolicy', () => {
  it('denies a tool without policy (default deny)', () => {
    const d = evaluatePolicy(undefined, input())
    expect(d).toMatchObject({
      allow: false,
      reason: 'no_policy',
      error: { code: 'ERR_TOOL_DENIED' },
    })
  })

  it('marks public tools, and allows a tool whose requirements the caller meets', () => {
    expect(evaluatePolicy({ public: true }, input())).toEqual({ allow: true, reason: 'public' })
    expect(evaluatePolicy({ scopes: ['drive:read'] }, input())).toEqual({
      allow: true,
      reason: 'allowed',
    })
  })

  it('still enforces requirements on a public tool', () => {
    expect(evaluatePolicy({ public: true, scopes: ['admin'] }, input())).toMatchObject({
      allow: false,
      reason: 'insufficient_scope',
    })
  })

  it('refuses callers outside callers.clientIds / callers.subjects (final)', () => {
    for (const callers of [
      { clientIds: ['other'] },
      { subjects: ['bob'] },
      { clientIds: ['client-1'], subjects: ['bob'] },
    ]) {
      const d = evaluatePolicy({ callers, scopes: ['missing'] }, input())
      expect(d).toMatchObject({
        allow: false,
        reason: 'caller_not_allowed',
        error: { code: 'ERR_CALLER_NOT_ALLOWED' },
      })
    }
    expect(
      evaluatePolicy({ callers: { clientIds: ['client-1'], subjects: ['alice'] } }, input()),
    ).toMatchObject({ allow: true })
  })

  it('answers an excluded caller as for an unknown tool; only the code tells them apart', () => {
    const excluded = evaluatePolicy({ callers: { subjects: ['bob'] }, scopes: ['x'] }, input())
    const unknown = evaluatePolicy(undefined, input())
    const ctx = { resourceMetadata: `${RESOURCE}/metadata`, algs: ['ES256'] }
    if (excluded.allow || unknown.allow) throw new Error('both calls must be refused')
    expect(excluded.error.code).toBe('ERR_CALLER_NOT_ALLOWED')
    expect(unknown.error.code).toBe('ERR_TOOL_DENIED')
    expect(toHttpAnswer(excluded.error, ctx)).toEqual(toHttpAnswer(unknown.error, ctx))
  })

  it('names EVERY required scope when one is missing', () => {
    const d = evaluatePolicy({ scopes: ['drive:read', 'drive:write', 'drive:share'] }, input())
    expect(d).toMatchObject({ allow: false, reason: 'insufficient_scope' })
    const error = (d as unknown as { error: InsufficientScopeError }).error
    expect(error).toBeInstanceOf(InsufficientScopeError)
    expect(error.scopes).toEqual(['drive:read', 'drive:write', 'drive:share'])
    expect(evaluatePolicy({ scopes: ['drive:read'] }, input())).toMatchObject({ allow: true })
  })

  it('asks for a stronger login (acr), with max_age when the policy has one', () => {
    const d = evaluatePolicy({ acr: ['urn:callproof:acr:mfa'], maxAge: 3600 }, input())
    expect(d).toMatchObject({ allow: false, reason: 'insufficient_user_authentication' })
    const error = (d as unknown as { error: InsufficientUserAuthenticationError }).error
    expect(error).toBeInstanceOf(InsufficientUserAuthenticationError)
    expect(error).toMatchObject({ acrValues: ['urn:callproof:acr:mfa'], maxAge: 3600 })
    const noAcr = { ...caller }
    delete noAcr.acr
    expect(
      evaluatePolicy({ acr: ['urn:callproof:acr:pwd'] }, input({ caller: noAcr })),
    ).toMatchObject({ allow: false })
    expect(evaluatePolicy({ acr: ['urn:callproof:acr:pwd'] }, input())).toMatchObject({
      allow: true,
    })
  })

  it('asks for a fresher login when auth_time is older than maxAge or missing', () => {
    const d = evaluatePolicy({ maxAge: 300 }, input())
    expect(d).toMatchObject({ allow: false, reason: 'insufficient_user_authentication' })
    expect((d as unknown as { error: InsufficientUserAuthenticationError }).error.maxAge).toBe(300)
    expect(
      (d as unknown as { error: InsufficientUserAuthenticationError }).error.acrValues,
    ).toBeUndefined()
    expect(evaluatePolicy({ maxAge: 600 }, input())).toMatchObject({ allow: true })
    const noAuthTime = { ...caller }
    delete noAuthTime.authTime
    expect(evaluatePolicy({ maxAge: 600 }, input({ caller: noAuthTime }))).toMatchObject({
      allow: false,
    })
  })

  it('checks in order: callers, scopes, authentication, approval', () => {
    const policy: ToolPolicy = { scopes: ['drive:share'], acr: ['mfa'], approval: 'per-call' }
    expect(evaluatePolicy(policy, input())).toMatchObject({ reason: 'insufficient_scope' })
    expect(
      evaluatePolicy(policy, input({ caller: { ...caller, scopes: ['drive:share'] } })),
    ).toMatchObject({
      reason: 'insufficient_user_authentication',
    })
    expect(
      evaluatePolicy(policy, input({ caller: { ...caller, scopes: ['drive:share'], acr: 'mfa' } })),
    ).toMatchObject({
      reason: 'approval_required',
    })
  })

  describe('per-call approval', () => {
    const policy: ToolPolicy = { approval: 'per-call' }
    const wanted = [approval()]

    it('requires an approval and says which one to request', () => {
      const d = evaluatePolicy(policy, input())
      expect(d).toMatchObject({
        allow: false,
        reason: 'approval_required',
        error: { code: 'ERR_APPROVAL_REQUIRED' },
      })
      expect((d as unknown as { error: ApprovalRequiredError }).error.authorizationDetails).toEqual(
        wanted,
      )
    })

    it('accepts the approval of exactly this call and names the token to consume', () => {
      const d = evaluatePolicy(
        policy,
        input({ authorizationDetails: wanted, tokenExpiresAt: NOW_MS + 120_000 }),
      )
      expect(d).toEqual({
        allow: true,
        reason: 'allowed',
        approval: { tokenId: 'tok-1', expiresAt: NOW_MS + 180_000 },
      })
    })

    it('uses the entry for this resource among several', () => {
      const details = [approval({ resource: 'https://other.example/mcp', tool: 'x' }), approval()]
      expect(evaluatePolicy(policy, input({ authorizationDetails: details }))).toMatchObject({
        allow: true,
      })
    })

    it.each([
      ['other arguments', [approval({ args: 'digest-2' })]],
      ['another tool', [approval({ tool: 'delete_file' })]],
      ['another resource only', [approval({ resource: 'https://other.example/mcp' })]],
      ['another type', [approval({ type: 'payment' })]],
      ['two entries for this resource', [approval(), approval({ args: 'digest-2' })]],
      ['no array', approval()],
      ['nothing', undefined],
    ])('refuses an approval for %s', (_, details) => {
      expect(evaluatePolicy(policy, input({ authorizationDetails: details }))).toMatchObject({
        allow: false,
        reason: 'approval_required',
      })
    })
  })
})

describe('canEverBeGranted', () => {
  it('is false without policy or for an excluded caller, true when a step-up could help', () => {
    expect(canEverBeGranted(undefined, caller)).toBe(false)
    expect(canEverBeGranted({ callers: { subjects: ['bob'] } }, caller)).toBe(false)
    expect(canEverBeGranted({ callers: { clientIds: ['x'] } }, caller)).toBe(false)
    expect(
      canEverBeGranted({ scopes: ['admin'], acr: ['mfa'], approval: 'per-call' }, caller),
    ).toBe(true)
  })
})

describe('assertValidPolicy', () => {
  it.each([
    ['not an object', null],
    ['an unknown key', { scope: ['drive:read'] }],
    ['non-string scopes', { scopes: [1] }],
    ['a scope with a space', { scopes: ['a b'] }],
    ['a scope with a quote', { scopes: ['a"b'] }],
    ['empty acr', { acr: [] }],
    ['a fractional maxAge', { maxAge: 1.5 }],
    ['a negative maxAge', { maxAge: -1 }],
    ['another approval', { approval: 'once' }],
    ['public as a string', { public: 'yes' }],
    ['unknown callers key', { callers: { users: ['a'] } }],
    ['non-string clientIds', { callers: { clientIds: [1] } }],
  ])('refuses %s with ERR_INVALID_OPTIONS', (_, policy) => {
    expect(() => assertValidPolicy('t', policy)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_OPTIONS' }),
    )
  })
  it('accepts the drive policies', () => {
    for (const p of [
      { public: true },
      { scopes: ['drive:write'], acr: ['urn:callproof:acr:mfa'], maxAge: 300 },
      { scopes: ['drive:share'], approval: 'per-call' },
      { callers: { clientIds: ['c'], subjects: ['s'] } },
    ]) {
      expect(() => assertValidPolicy('t', p)).not.toThrow()
    }
  })
})

describe('a policy that requires nothing', () => {
  // `{}` (or `{ scopes: [] }`) reads like "no restrictions configured yet"; it must not silently
  // open a tool to every verified caller. Opening a tool takes an explicit `public: true`.
  for (const policy of [{}, { scopes: [] }, { public: false }] as ToolPolicy[]) {
    it(`denies ${JSON.stringify(policy)} as if there were no policy`, () => {
      const d = evaluatePolicy(policy, input())
      expect(d.allow).toBe(false)
      if (!d.allow) expect(d.reason).toBe('no_policy')
      expect(canEverBeGranted(policy, caller)).toBe(false)
    })
    it(`is refused at registration: ${JSON.stringify(policy)}`, () => {
      expect(() => assertValidPolicy('open_tool', policy)).toThrow(/public: true/)
    })
  }
  it('allows any verified caller when it says public: true', () => {
    const d = evaluatePolicy({ public: true }, input())
    expect(d).toMatchObject({ allow: true, reason: 'public' })
    expect(canEverBeGranted({ public: true }, caller)).toBe(true)
    expect(() => assertValidPolicy('whoami', { public: true })).not.toThrow()
  })
})
