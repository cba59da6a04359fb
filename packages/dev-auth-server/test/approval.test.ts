import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MCP_TOOL_CALL, argumentsDigest, devInteraction } from '../src/index.js'
import type { DevAuthServer } from '../src/index.js'
import { RESOURCE, TestClient, startServer } from './helpers.js'

let server: DevAuthServer

beforeAll(async () => {
  server = await startServer()
})
afterAll(async () => {
  await server.close()
})

function shareCall(args: Record<string, unknown>, display = true) {
  return {
    type: MCP_TOOL_CALL,
    resource: RESOURCE,
    tool: 'share_file',
    args: argumentsDigest(args),
    ...(display ? { arguments: args } : {}),
  }
}

describe('per-call approval (RFC 9396 mcp_tool_call)', () => {
  it('shows the call in plain words and issues a one-time, short, refresh-less token for it', async () => {
    const client = await TestClient.create(server.issuer)
    const alice = devInteraction({ user: 'alice' })
    const args = { path: 'notes.txt', with: 'bob' }
    const detail = shareCall(args)
    const tokens = await client.login(
      alice,
      { scope: 'drive:share', authorization_details: JSON.stringify([detail]) },
      'approval',
    )
    const approval = alice.pages.find((p) => p.form === 'approval')
    expect(approval?.text).toContain(
      'Allow agent callproof development client to call share_file with path=notes.txt, with=bob?',
    )
    expect(approval?.text).toContain(RESOURCE)

    const { payload } = await client.verify(tokens.access_token)
    // The display-only `arguments` stay out of the token: it names the call by its digest.
    const expected = [
      { type: MCP_TOOL_CALL, resource: RESOURCE, tool: 'share_file', args: detail.args },
    ]
    expect(payload.authorization_details).toEqual(expected)
    expect(tokens.authorization_details).toEqual(expected)
    expect(payload.exp! - payload.iat!).toBe(60)
    expect(tokens.expires_in).toBe(60)
    expect(tokens.refresh_token).toBeUndefined()
    expect(payload.scope).toBe('drive:share')
    expect(payload.cnf).toEqual({ jkt: await client.jkt() })
    expect(payload.sub).toBe('alice')
  })

  it('asks again for every approval and never carries an old approval into a later token', async () => {
    const client = await TestClient.create(server.issuer)
    const alice = devInteraction({ user: 'alice' })
    const first = shareCall({ path: 'a.txt', with: 'bob' })
    await client.login(alice, {
      scope: 'drive:share',
      authorization_details: JSON.stringify([first]),
    })
    // The same call again: a new approval page, not a silent re-issue.
    const again = await client.login(alice, {
      scope: 'drive:share',
      authorization_details: JSON.stringify([first]),
    })
    expect(alice.pages.filter((p) => p.form === 'approval')).toHaveLength(2)
    expect((await client.verify(again.access_token)).payload.authorization_details).toHaveLength(1)

    const second = shareCall({ path: 'b.txt', with: 'carol' })
    const tokens = await client.login(alice, {
      scope: 'drive:share',
      authorization_details: JSON.stringify([second]),
    })
    const { payload } = await client.verify(tokens.access_token)
    expect(payload.authorization_details).toEqual([
      { type: MCP_TOOL_CALL, resource: RESOURCE, tool: 'share_file', args: second.args },
    ])

    const plain = await client.login(alice, { scope: 'drive:read' })
    expect((await client.verify(plain.access_token)).payload.authorization_details).toBeUndefined()
    expect(plain.refresh_token).toBeTypeOf('string')
  })

  it('without display arguments the page says so and shows the digest', async () => {
    const client = await TestClient.create(server.issuer)
    const bob = devInteraction({ user: 'bob' })
    const detail = shareCall({ path: 'x', with: 'alice' }, false)
    const tokens = await client.login(bob, {
      scope: 'drive:share',
      authorization_details: JSON.stringify([detail]),
    })
    const page = bob.pages.find((p) => p.form === 'approval')
    expect(page?.text).toContain('call share_file (arguments not shown by the agent)')
    expect(page?.text).toContain(detail.args)
    expect((await client.verify(tokens.access_token)).payload.authorization_details).toEqual([
      detail,
    ])
  })

  it('quotes argument values that could pass for more arguments', async () => {
    const client = await TestClient.create(server.issuer)
    const alice = devInteraction({ user: 'alice' })
    const args = { path: 'a.txt, with=eve', with: 'bob', note: { x: 1 } }
    await client.login(alice, {
      scope: 'drive:share',
      authorization_details: JSON.stringify([shareCall(args)]),
    })
    expect(alice.pages.find((p) => p.form === 'approval')?.text).toContain(
      'call share_file with path="a.txt, with=eve", with=bob, note={"x":1}?',
    )
  })

  it('denying the call ends the flow with access_denied', async () => {
    const client = await TestClient.create(server.issuer)
    const { url, state } = await client.authorizationUrl({
      scope: 'drive:share',
      authorization_details: JSON.stringify([shareCall({ path: 'notes.txt', with: 'eve' })]),
    })
    const callback = await devInteraction({ user: 'alice', approve: false }).authorize(url, {
      reason: 'approval',
    })
    expect(callback.searchParams.get('error')).toBe('access_denied')
    expect(callback.searchParams.get('error_description')).toBe('the user denied this call')
    expect(callback.searchParams.get('state')).toBe(state)
    expect(callback.searchParams.get('code')).toBeNull()
  })
})
