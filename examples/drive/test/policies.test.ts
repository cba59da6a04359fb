/**
 * Tool policies of the drive (DESIGN.md's table): scopes, step-up authentication on delete_file,
 * per-call approval on share_file, unknown tools, and the verified caller reaching the handler.
 * Each refusal asserts its challenge and that the drive did not change; each has a control.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { expectChallenge, mfaRequired, startFixture, uniquePath } from './support/drive.js'
import type { Fixture } from './support/drive.js'
import { ACR_MFA, ACR_PWD } from './support/issuer.js'
import { dpopChallenge } from './support/http.js'
import type { HttpAnswer } from './support/http.js'
import { resultOf, rpc, toolCall, toolText } from './support/mcp.js'
import type { McpCaller } from './support/mcp.js'
import { argsDigest } from './support/proof.js'

let fx: Fixture
beforeAll(async () => {
  fx = await startFixture()
})
afterAll(async () => {
  await fx?.close()
})

const scopeSet = (s: string | undefined) => (s ?? '').split(' ').filter(Boolean).sort()

function expectScope(answer: HttpAnswer, required: string[]) {
  const ch = expectChallenge(fx, answer, {
    status: 403,
    error: 'insufficient_scope',
    code: 'ERR_INSUFFICIENT_SCOPE',
  })
  expect(scopeSet(ch.params.scope)).toEqual([...required].sort())
}

describe('scopes', () => {
  it('write_file with a read-only token: 403 insufficient_scope scope="drive:write", no write', async () => {
    const reader = await fx.caller({ scope: 'drive:read' })
    const path = uniquePath('scope')
    expectScope(await reader.callTool('write_file', { path, content: 'x' }), ['drive:write'])
    expect(await fx.file('alice', path)).toBeUndefined()
    // Control: the same caller can do what its scope allows.
    expect(JSON.parse(toolText(await reader.callTool('list_files', {})))).toBeInstanceOf(Array)
  })

  it('list_files and read_file with a write-only token: scope="drive:read"', async () => {
    const writer = await fx.caller({ scope: 'drive:write' })
    expectScope(await writer.callTool('list_files', {}), ['drive:read'])
    expectScope(await writer.callTool('read_file', { path: 'README.md' }), ['drive:read'])
  })

  it('scopes are whole words: "drive:readwrite drive:reader" grants neither read nor write', async () => {
    const c = await fx.caller({ scope: 'drive:readwrite drive:reader drive:write:x' })
    expectScope(await c.callTool('list_files', {}), ['drive:read'])
    const path = uniquePath('scopeword')
    expectScope(await c.callTool('write_file', { path, content: 'x' }), ['drive:write'])
    expect(await fx.file('alice', path)).toBeUndefined()
  })

  it('a token without any scope can call whoami but not list_files', async () => {
    const c = await fx.caller({ scope: null })
    const who = JSON.parse(toolText(await c.callTool('whoami'))) as { sub: string }
    expect(who.sub).toBe('alice')
    expectScope(await c.callTool('list_files', {}), ['drive:read'])
  })

  it('share_file without drive:share, even with a valid approval: scope="drive:share", not shared', async () => {
    const c = await fx.caller({ scope: 'drive:read drive:write' })
    const path = uniquePath('noshare')
    await fx.write('alice', path, 'x')
    const args = { path, with: 'bob' }
    const approval = await fx.token(c.key, {
      scope: 'drive:read drive:write',
      authorizationDetails: [
        {
          type: 'mcp_tool_call',
          resource: fx.resource,
          tool: 'share_file',
          args: await argsDigest(args),
        },
      ],
    })
    await c.connect()
    expectScope(await c.callTool('share_file', args, { token: approval }), ['drive:share'])
    expect((await fx.file('alice', path))?.sharedWith).toEqual([])
  })
})

describe('delete_file: acr urn:callproof:acr:mfa, max_age 300', () => {
  async function seeded(): Promise<string> {
    const path = uniquePath('del')
    await fx.write('alice', path, 'keep me')
    return path
  }

  it('with a password login: 401 insufficient_user_authentication acr_values=mfa, file kept', async () => {
    const path = await seeded()
    const c = await fx.caller({ acr: ACR_PWD, authAgo: 5 })
    expectChallenge(fx, await c.callTool('delete_file', { path }), mfaRequired(true))
    expect(await fx.read('alice', path)).toBe('keep me')
  })

  it('with no acr at all: the same challenge, file kept', async () => {
    const path = await seeded()
    const c = await fx.caller({ acr: null, authAgo: 5 })
    expectChallenge(fx, await c.callTool('delete_file', { path }), mfaRequired(true))
    expect(await fx.read('alice', path)).toBe('keep me')
  })

  it('with an unknown acr that merely contains "mfa": refused, file kept', async () => {
    const path = await seeded()
    const c = await fx.caller({ acr: `${ACR_MFA}-lite`, authAgo: 5 })
    expectChallenge(fx, await c.callTool('delete_file', { path }), mfaRequired(true))
    expect(await fx.read('alice', path)).toBe('keep me')
  })

  it('with mfa but auth_time 400 s ago: 401 with max_age=300, file kept', async () => {
    const path = await seeded()
    const c = await fx.caller({ acr: ACR_MFA, authAgo: 400 })
    const ch = expectChallenge(fx, await c.callTool('delete_file', { path }), mfaRequired(true))
    expect(ch.params.max_age).toMatch(/^\d+$/)
    expect(await fx.read('alice', path)).toBe('keep me')
  })

  it('with mfa but no auth_time: refused (freshness cannot be shown), file kept', async () => {
    const path = await seeded()
    const c = await fx.caller({ acr: ACR_MFA, authAgo: null })
    const answer = await c.callTool('delete_file', { path })
    expectChallenge(fx, answer, mfaRequired(true))
    expect(await fx.read('alice', path)).toBe('keep me')
  })

  it('with mfa but no drive:write: 403 insufficient_scope, file kept', async () => {
    const path = await seeded()
    const c = await fx.caller({ acr: ACR_MFA, authAgo: 5, scope: 'drive:read' })
    expectScope(await c.callTool('delete_file', { path }), ['drive:write'])
    expect(await fx.read('alice', path)).toBe('keep me')
  })

  it('control: a fresh mfa login deletes the file, in the same session a pwd token was refused in', async () => {
    const path = await seeded()
    const c = await fx.caller({ acr: ACR_PWD, authAgo: 5 })
    expectChallenge(fx, await c.callTool('delete_file', { path }), mfaRequired(true))
    const stepped = await fx.token(c.key, { acr: ACR_MFA, authAgo: 10 })
    toolText(await c.callTool('delete_file', { path }, { token: stepped }))
    expect(await fx.file('alice', path)).toBeUndefined()
  })
})

describe('share_file: approval per call', () => {
  const detail = async (
    args: Record<string, unknown>,
    over: Record<string, unknown> = {},
  ): Promise<Record<string, unknown>> => ({
    type: 'mcp_tool_call',
    resource: fx.resource,
    tool: 'share_file',
    args: await argsDigest(args),
    ...over,
  })

  async function setup(): Promise<{
    c: McpCaller
    path: string
    args: { path: string; with: string }
  }> {
    const path = uniquePath('share')
    await fx.write('alice', path, 'secret plan')
    const c = await fx.caller()
    await c.connect()
    return { c, path, args: { path, with: 'bob' } }
  }

  async function expectApprovalRefused(
    answer: HttpAnswer,
    path: string,
    code = 'ERR_APPROVAL_REQUIRED',
  ) {
    const ch = expectChallenge(fx, answer, {
      status: 403,
      error: 'insufficient_authorization_details',
      code,
    })
    expect(ch.params.error).toBe('insufficient_authorization_details')
    expect((await fx.file('alice', path))?.sharedWith).toEqual([])
  }

  it('without approval: 403 insufficient_authorization_details naming this call, not shared', async () => {
    const { c, path, args } = await setup()
    const answer = await c.callTool('share_file', args)
    await expectApprovalRefused(answer, path)
    // The answer tells the client what to request (docs/protocol.md §11.1): this very call, as a
    // base64url JSON array in the challenge and unencoded in the body.
    const wanted = [
      {
        type: 'mcp_tool_call',
        resource: fx.resource,
        tool: 'share_file',
        args: await argsDigest(args),
      },
    ]
    const param = dpopChallenge(answer)?.params.authorization_details
    expect(param).toBeDefined()
    const decoded = JSON.parse(Buffer.from(param!, 'base64url').toString('utf8')) as unknown[]
    expect(decoded).toEqual([expect.objectContaining(wanted[0])])
    expect((answer.json as { authorization_details?: unknown }).authorization_details).toEqual(
      decoded,
    )
  })

  it('with an approval for other arguments: refused, not shared', async () => {
    const { c, path, args } = await setup()
    const approval = await fx.token(c.key, {
      authorizationDetails: [await detail({ path, with: 'mallory' })],
    })
    await expectApprovalRefused(await c.callTool('share_file', args, { token: approval }), path)
  })

  it('with an approval for another tool: refused, not shared', async () => {
    const { c, path, args } = await setup()
    const approval = await fx.token(c.key, {
      authorizationDetails: [await detail(args, { tool: 'write_file' })],
    })
    await expectApprovalRefused(await c.callTool('share_file', args, { token: approval }), path)
  })

  it('with an approval for another resource (aud still names this one): refused, not shared', async () => {
    const { c, path, args } = await setup()
    const other = 'https://other.example/mcp'
    const approval = await fx.token(c.key, {
      aud: [fx.resource, other],
      authorizationDetails: [await detail(args, { resource: other })],
    })
    await expectApprovalRefused(await c.callTool('share_file', args, { token: approval }), path)
  })

  it('with an approval of another type: refused, not shared', async () => {
    const { c, path, args } = await setup()
    const approval = await fx.token(c.key, {
      authorizationDetails: [await detail(args, { type: 'payment_initiation' })],
    })
    await expectApprovalRefused(await c.callTool('share_file', args, { token: approval }), path)
  })

  it('with two entries for this resource (one token approving two calls): refused, not shared', async () => {
    const { c, path, args } = await setup()
    const approval = await fx.token(c.key, {
      authorizationDetails: [await detail(args), await detail({ path, with: 'carol' })],
    })
    await expectApprovalRefused(await c.callTool('share_file', args, { token: approval }), path)
  })

  it('control + used approval: the right approval shares once inside the ordinary session; reuse is refused', async () => {
    const { c, path, args } = await setup()
    const approval = await fx.token(c.key, { authorizationDetails: [await detail(args)] })
    // The session was opened with the ordinary token; the approval token serves this one call.
    const ok = await c.callTool('share_file', args, { token: approval })
    toolText(ok)
    expect((await fx.file('alice', path))?.sharedWith).toEqual(['bob'])
    // Put the file back to unshared (delete with fresh mfa, then rewrite) so a second run shows.
    const mfa = await fx.caller({ acr: ACR_MFA, authAgo: 5 })
    toolText(await mfa.callTool('delete_file', { path }))
    await fx.write('alice', path, 'secret plan')
    expect((await fx.file('alice', path))?.sharedWith).toEqual([])
    // Same approval again, with a fresh proof: it is spent.
    await expectApprovalRefused(
      await c.callTool('share_file', args, { token: approval }),
      path,
      'ERR_APPROVAL_USED',
    )
    // And on a brand-new session of the same caller: still spent.
    c.sessionId = undefined
    await expectApprovalRefused(
      await c.callTool('share_file', args, { token: approval }),
      path,
      'ERR_APPROVAL_USED',
    )
  })

  it('an approval token used for other requests first is not spent by them', async () => {
    const { c, path, args } = await setup()
    const approval = await fx.token(c.key, { authorizationDetails: [await detail(args)] })
    expect((await c.send(rpc('tools/list'), { token: approval })).status).toBe(200)
    toolText(await c.callTool('whoami', {}, { token: approval }))
    toolText(await c.callTool('share_file', args, { token: approval }))
    expect((await fx.file('alice', path))?.sharedWith).toEqual(['bob'])
  })

  it('one approval sent 8 times at once (fresh proofs) shares exactly once', async () => {
    const { c, path, args } = await setup()
    const approval = await fx.token(c.key, { authorizationDetails: [await detail(args)] })
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => c.send(toolCall('share_file', args), { token: approval })),
    )
    expect(answers.filter((a) => a.status === 200)).toHaveLength(1)
    for (const a of answers.filter((x) => x.status !== 200)) {
      expectChallenge(fx, a, {
        status: 403,
        error: 'insufficient_authorization_details',
        code: 'ERR_APPROVAL_USED',
      })
    }
    expect((await fx.file('alice', path))?.sharedWith).toEqual(['bob'])
  })

  it('control: an approval token naming several resources uses the entry for this resource', async () => {
    const { c, path, args } = await setup()
    const other = 'https://other.example/mcp'
    const approval = await fx.token(c.key, {
      aud: [other, fx.resource],
      authorizationDetails: [
        await detail({ path, with: 'mallory' }, { resource: other }),
        await detail(args),
      ],
    })
    toolText(await c.callTool('share_file', args, { token: approval }))
    expect((await fx.file('alice', path))?.sharedWith).toEqual(['bob'])
  })

  it("an approval bound to another caller's key cannot be used by this caller", async () => {
    const { c, path, args } = await setup()
    const mallory = await fx.caller()
    const approval = await fx.token(mallory.key, { authorizationDetails: [await detail(args)] })
    const answer = await c.callTool('share_file', args, { token: approval })
    expectChallenge(fx, answer, { status: 401, error: 'invalid_dpop_proof' })
    expect((await fx.file('alice', path))?.sharedWith).toEqual([])
  })
})

describe('unknown tools and the verified caller', () => {
  it('an unknown tool is refused with 403 access_denied, nothing runs', async () => {
    const c = await fx.caller()
    const answer = await c.callTool('format_disk', { path: 'README.md' })
    expect(answer.status, answer.text).toBe(403)
    expect(answer.headers.get('www-authenticate') ?? '').toMatch(/error="access_denied"/)
    expect((answer.json as { code?: string }).code).toBe('ERR_TOOL_DENIED')
    expect(answer.messages.some((m) => 'result' in m)).toBe(false)
    expect(await fx.read('alice', 'README.md')).toContain('My drive')
  })

  it.each(['__proto__', 'constructor', 'toString', 'hasOwnProperty', ''])(
    'a tool named %j (prototype names, empty) is refused with 403 access_denied',
    async (name) => {
      const c = await fx.caller()
      const answer = await c.callTool(name, {})
      expect(answer.status, answer.text).toBe(403)
      expect(answer.headers.get('www-authenticate') ?? '').toMatch(/error="access_denied"/)
    },
  )

  it('whoami returns the verified caller: sub, clientId, jkt, acr, scopes', async () => {
    const c = await fx.caller({
      sub: 'carol',
      clientId: 'carol-app',
      acr: ACR_MFA,
      scope: 'drive:read drive:share',
    })
    const who = JSON.parse(toolText(await c.callTool('whoami'))) as Record<string, unknown>
    expect(who.sub).toBe('carol')
    expect(who.clientId).toBe('carol-app')
    expect(who.jkt).toBe(c.key.jkt)
    expect(who.acr).toBe(ACR_MFA)
    const scopes = Array.isArray(who.scopes)
      ? (who.scopes as string[])
      : String(who.scopes).split(' ')
    expect([...scopes].sort()).toEqual(['drive:read', 'drive:share'])
  })

  it("no caller sees or touches another caller's files", async () => {
    const path = uniquePath('private')
    await fx.write('alice', path, 'alice only')
    const bob = await fx.caller({ sub: 'bob' })
    const bobFiles = JSON.parse(toolText(await bob.callTool('list_files', {}))) as {
      path: string
    }[]
    expect(bobFiles.map((f) => f.path)).not.toContain(path)
    // Seeds are the same for everyone: bob sees his own copy of README.md.
    expect(bobFiles.map((f) => f.path)).toContain('README.md')
    const read = await bob.callTool('read_file', { path })
    expect(read.status).toBe(200)
    expect(read.text).not.toContain('alice only')
    toolText(await bob.callTool('write_file', { path, content: 'bob was here' }))
    expect(await fx.read('alice', path)).toBe('alice only')
    expect(await fx.read('bob', path)).toBe('bob was here')
    // A subject is a subject whatever the client: another client of alice sees alice's file.
    const aliceOtherApp = await fx.caller({ sub: 'alice', clientId: 'other-app' })
    expect(toolText(await aliceOtherApp.callTool('read_file', { path }))).toBe('alice only')
  })
})

describe('tools/list per caller (docs/protocol.md §16)', () => {
  type Listed = { name: string; _meta?: Record<string, Record<string, unknown>> }
  async function list(c: McpCaller): Promise<Map<string, Record<string, unknown>>> {
    await c.connect()
    const answer = await c.send(rpc('tools/list'))
    expect(answer.status).toBe(200)
    const tools = (resultOf(answer) as { tools: Listed[] }).tools
    return new Map(tools.map((t) => [t.name, t._meta?.['callproof/policy'] ?? {}]))
  }

  it('lists every drive tool with its requirements, stepUp reflecting this caller', async () => {
    const reader = await list(await fx.caller({ scope: 'drive:read', acr: ACR_PWD }))
    expect([...reader.keys()].sort()).toEqual(
      ['delete_file', 'list_files', 'read_file', 'share_file', 'whoami', 'write_file'].sort(),
    )
    expect(reader.get('list_files')).toMatchObject({ scopes: ['drive:read'], stepUp: false })
    expect(reader.get('write_file')).toMatchObject({ scopes: ['drive:write'], stepUp: true })
    expect(reader.get('delete_file')).toMatchObject({
      scopes: ['drive:write'],
      acr: [ACR_MFA],
      maxAge: 300,
      stepUp: true,
    })
    expect(reader.get('share_file')).toMatchObject({ approval: 'per-call', stepUp: true })
    const mfa = await list(await fx.caller({ acr: ACR_MFA, authAgo: 5 }))
    expect(mfa.get('delete_file')).toMatchObject({ stepUp: false })
    expect(mfa.get('write_file')).toMatchObject({ stepUp: false })
    expect(mfa.get('share_file')).toMatchObject({ stepUp: true })
  })
})
