import { devInteraction } from '@callproof/dev-auth-server'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ChallengeError, sendWithProof } from '../src/index.js'
import { DpopNonces } from '../src/fetch.js'
import { isError, open, text } from './support/mcp.js'
import { startWorld, type World } from './support/world.js'

let world: World
beforeAll(async () => {
  world = await startWorld()
})
afterAll(() => world?.close())

describe('challenges answered by the client', () => {
  it('steps up to MFA for delete_file (insufficient_user_authentication → acr_values/max_age)', async () => {
    const interaction = devInteraction({ user: 'alice' })
    const { client, session } = await open(world.drive.url, {
      interaction,
      development: true,
      scopes: ['drive:read', 'drive:write'],
    })
    await client.callTool({ name: 'write_file', arguments: { path: 'tmp/x.txt', content: 'x' } })
    expect(interaction.pages.map((p) => p.form)).not.toContain('mfa')
    const deleted = await client.callTool({ name: 'delete_file', arguments: { path: 'tmp/x.txt' } })
    expect(isError(deleted)).toBe(false)
    expect(interaction.pages.map((p) => p.form)).toContain('mfa')
    const who = JSON.parse(text(await client.callTool({ name: 'whoami', arguments: {} })))
    expect(who.acr).toBe('urn:callproof:acr:mfa')
    expect((await session.token())?.scopes).toEqual(expect.arrayContaining(['drive:write']))
    await client.close()
  })

  it('asks an approval for share_file, uses it for that one call, keeps the session token', async () => {
    const interaction = devInteraction({ user: 'alice' })
    const { client, session } = await open(world.drive.url, {
      interaction,
      development: true,
      scopes: ['drive:read', 'drive:share'],
    })
    const files = JSON.parse(text(await client.callTool({ name: 'list_files', arguments: {} })))
    const path = files[0].path as string
    const sessionToken = (await session.token())?.accessToken
    const shared = await client.callTool({ name: 'share_file', arguments: { path, with: 'bob' } })
    expect(isError(shared)).toBe(false)
    const approvals = () => interaction.pages.filter((p) => p.form === 'approval')
    expect(approvals()).toHaveLength(1)
    // The approval page showed the call: tool and arguments.
    expect(approvals()[0]?.text).toContain('share_file')
    // The session token was not replaced by the one-time token.
    expect((await session.token())?.accessToken).toBe(sessionToken)
    const after = JSON.parse(text(await client.callTool({ name: 'list_files', arguments: {} })))
    expect(after.find((f: { path: string }) => f.path === path).sharedWith).toContain('bob')
    // A second share needs a second approval: the first one served exactly one call.
    await client.callTool({ name: 'share_file', arguments: { path, with: 'carol' } })
    expect(approvals()).toHaveLength(2)
    await client.close()
  })

  it('a one-time approval token is refused for a second call', async () => {
    const interaction = devInteraction({ user: 'alice' })
    const { client, session } = await open(world.drive.url, {
      interaction,
      development: true,
      scopes: ['drive:read', 'drive:share'],
    })
    const files = JSON.parse(text(await client.callTool({ name: 'list_files', arguments: {} })))
    const args = { path: files[0].path as string, with: 'bob' }
    const oneTime = await session.approve({ tool: 'share_file', arguments: args })
    const signer = { keyPair: session.options.keyPair, nonces: new DpopNonces() }
    const call = (id: number) => ({
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-protocol-version': '2025-06-18',
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id,
        method: 'tools/call',
        params: { name: 'share_file', arguments: args },
      }),
    })
    // A call outside the SDK session: the first use of the approval reaches the tool…
    const first = await sendWithProof(signer, world.drive.url, call(1), oneTime)
    expect(first.status).toBe(200)
    expect(await first.text()).toContain('bob')
    // …the second use of the same approval is refused.
    const second = await sendWithProof(signer, world.drive.url, call(2), oneTime)
    expect(second.status).toBe(403)
    expect(second.headers.get('www-authenticate')).toContain('insufficient_authorization_details')
    await client.close()
  })

  it('refreshes (with rotation) on invalid_token instead of asking the user again', async () => {
    const interaction = devInteraction({ user: 'alice' })
    const { client, session } = await open(world.drive.url, {
      interaction,
      development: true,
      scopes: ['drive:read'],
    })
    await client.callTool({ name: 'list_files', arguments: {} })
    const before = await session.token()
    expect(before?.refreshToken).toBeDefined()
    const logins = interaction.pages.length
    // Break the stored access token (as if it had expired): the server answers invalid_token.
    await session.store.set(before!.issuer, before!.resource, {
      ...before!,
      accessToken: `${before!.accessToken.slice(0, -4)}AAAA`,
    })
    const result = await client.callTool({ name: 'list_files', arguments: {} })
    expect(isError(result)).toBe(false)
    const after = await session.token()
    expect(after?.accessToken).not.toBe(before?.accessToken)
    expect(after?.refreshToken).toBeDefined()
    expect(after?.refreshToken).not.toBe(before?.refreshToken)
    expect(interaction.pages.length).toBe(logins)
    await client.close()
  })

  it('gives up with a typed error when the user denies', async () => {
    const interaction = devInteraction({ user: 'alice', consent: false })
    await expect(
      open(world.drive.url, { interaction, development: true, scopes: ['drive:read'] }),
    ).rejects.toMatchObject({ code: 'ERR_AUTHORIZATION_FAILED' })
  })

  it('gives up with ChallengeError when an approval is denied', async () => {
    const interaction = devInteraction({ user: 'alice', approve: false })
    const { client } = await open(world.drive.url, {
      interaction,
      development: true,
      scopes: ['drive:read', 'drive:share'],
    })
    const err = await client
      .callTool({ name: 'share_file', arguments: { path: 'README.md', with: 'bob' } })
      .catch((e: unknown) => e)
    expect(err).toBeInstanceOf(Error)
    // The SDK may wrap transport errors; the typed cause must be reachable.
    const typed = findTyped(err)
    expect(typed?.code).toBe('ERR_AUTHORIZATION_FAILED')
    await client.close()
  })
})

function findTyped(err: unknown): { code: string } | undefined {
  let e: unknown = err
  for (let i = 0; i < 5 && e; i++) {
    if (
      typeof (e as { code?: unknown }).code === 'string' &&
      (e as Error).name.startsWith('Callproof')
    ) {
      return e as { code: string }
    }
    if (e instanceof ChallengeError) return e
    e = (e as { cause?: unknown }).cause
  }
  return undefined
}

describe('concurrency', () => {
  it('concurrent requests refused for the same token share one refresh', async () => {
    const tokenRequests: string[] = []
    const counting: typeof fetch = async (input, init) => {
      if (String(input).endsWith('/token')) tokenRequests.push(String(init?.body))
      return fetch(input, init)
    }
    const interaction = devInteraction({ user: 'alice' })
    const { client, session } = await open(world.drive.url, {
      interaction,
      development: true,
      scopes: ['drive:read'],
      fetch: counting,
    })
    await client.callTool({ name: 'list_files', arguments: {} })
    const before = (await session.token())!
    await session.store.set(before.issuer, before.resource, {
      ...before,
      accessToken: `${before.accessToken.slice(0, -4)}AAAA`,
    })
    const issued = tokenRequests.length
    const results = await Promise.all(
      Array.from({ length: 8 }, () => client.callTool({ name: 'list_files', arguments: {} })),
    )
    expect(results.every((r) => !isError(r))).toBe(true)
    const refreshes = tokenRequests.slice(issued).filter((b) => b.includes('refresh_token'))
    expect(refreshes).toHaveLength(1)
    await client.close()
  })
})
