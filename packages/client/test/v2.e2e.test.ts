// `@callproof/client/v2`: the real SDK v2 client (`@modelcontextprotocol/client` 2.x) through
// callproof's proof fetch, on both protocol revisions:
// - 2025-11-25 against the real drive (callproof's SDK v1 server seam) and dev authorization
//   server: SDK v2 probes, falls back to the initialize handshake, and every request is signed;
// - 2026-07-28 against SDK v2's own server behind @callproof/core's verifier (test/support/
//   v2-server.ts): stateless requests with MCP-Protocol-Version, Mcp-Method and Mcp-Name headers
//   that agree with each proof's `mcp` binding, and an insufficient_scope challenge answered.
import { devInteraction } from '@callproof/dev-auth-server'
import { jwkThumbprint } from '@callproof/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CallproofClientError, connect, generateProofKeyPair, type Interaction } from '../src/v2.js'
import { text } from './support/mcp.js'
import { startBearerOnlyV2Server, startV2World, type V2World } from './support/v2-server.js'
import { startWorld, type World } from './support/world.js'

let world: World
let v2: V2World
beforeAll(async () => {
  ;[world, v2] = await Promise.all([startWorld(), startV2World()])
})
afterAll(async () => {
  await Promise.all([world?.close(), v2?.close()])
})

describe('SDK v2 client on 2025-11-25 (the drive, callproof on SDK v1)', () => {
  it('signs in, binds the token to its key and calls tools', async () => {
    const keyPair = await generateProofKeyPair()
    const client = await connect(world.drive.url, {
      interaction: devInteraction({ user: 'alice' }),
      keyPair,
      development: true,
      scopes: ['drive:read'],
    })
    expect(client.getNegotiatedProtocolVersion()).toBe('2025-11-25')
    const who = JSON.parse(text(await client.callTool({ name: 'whoami', arguments: {} })))
    expect(who.sub).toBe('alice')
    expect(who.jkt).toBe(
      await jwkThumbprint(await crypto.subtle.exportKey('jwk', keyPair.publicKey)),
    )
    // insufficient_scope: authorized again for the union of scopes, the call retried.
    await client.callTool({ name: 'write_file', arguments: { path: 'v2/a.txt', content: 'hi' } })
    const read = await client.callTool({ name: 'read_file', arguments: { path: 'v2/a.txt' } })
    expect(text(read)).toContain('hi')
    await client.close()
  })

  it('gives up on a denied approval with the typed error as the cause', async () => {
    const client = await connect(world.drive.url, {
      interaction: devInteraction({ user: 'alice', approve: false }),
      development: true,
      scopes: ['drive:read', 'drive:share'],
    })
    const err = await client
      .callTool({ name: 'share_file', arguments: { path: 'README.md', with: 'bob' } })
      .then(
        () => undefined,
        (e: unknown) => e,
      )
    let typed: unknown = err
    while (typed instanceof Error && !(typed instanceof CallproofClientError)) typed = typed.cause
    expect(typed).toBeInstanceOf(CallproofClientError)
    expect((typed as CallproofClientError).code).toBe('ERR_AUTHORIZATION_FAILED')
    await client.close()
  })
})

describe('SDK v2 client on 2026-07-28 (SDK v2 server behind the callproof verifier)', () => {
  it('sends stateless, proven requests whose Mcp-Method / Mcp-Name agree with the proof', async () => {
    v2.seen.length = 0
    const client = await connect(v2.url, {
      interaction: devInteraction({ user: 'alice' }),
      development: true,
      scopes: ['notes:read'],
    })
    expect(client.getNegotiatedProtocolVersion()).toBe('2026-07-28')
    const { tools } = await client.listTools()
    expect(tools.map((t) => t.name).sort()).toEqual(['read_note', 'write_note'])
    const result = await client.callTool({ name: 'read_note', arguments: { id: '7' } })
    expect(text(result)).toBe('note 7')
    // write_note needs notes:write: 403 insufficient_scope, a new authorization, the call retried.
    const written = await client.callTool({ name: 'write_note', arguments: { id: '8' } })
    expect(text(written)).toBe('wrote 8')
    await client.close()

    // Every verified POST: the 2026-07-28 headers, and a binding equal to what they name.
    const posts = v2.seen.filter((s) => s.binding !== undefined)
    expect(posts.map((s) => s.mcpMethod)).toEqual(
      expect.arrayContaining(['server/discover', 'tools/list', 'tools/call']),
    )
    for (const post of posts) {
      expect(post.protocolVersion).toBe('2026-07-28')
      expect(post.binding).toMatchObject({ method: post.mcpMethod })
      if (post.mcpMethod === 'tools/call')
        expect(post.binding).toMatchObject({ name: post.mcpName })
    }
    expect(posts.filter((s) => s.mcpName === 'write_note').length).toBeGreaterThanOrEqual(2)
  })

  it('refuses to connect when pinned to a revision the server does not speak', async () => {
    const error = await connect(world.drive.url, {
      interaction: devInteraction({ user: 'alice' }),
      development: true,
      scopes: ['drive:read'],
      versionNegotiation: { mode: { pin: '2026-07-28' } },
    }).then(
      () => undefined,
      (e: unknown) => e as Error,
    )
    expect(error?.message).toMatch(/did not offer pinned protocol version 2026-07-28/)
  })
})

describe("SDK v2's own Bearer protection alone (requireBearerAuth)", () => {
  it('is refused before anyone signs in: it offers no DPoP-bound tokens', async () => {
    const server = await startBearerOnlyV2Server(v2.issuer)
    try {
      let asked = 0
      const real = devInteraction({ user: 'alice' })
      const interaction: Interaction = {
        redirectUri: () => real.redirectUri(),
        authorize: (url, context) => {
          asked++
          return real.authorize(url, context)
        },
      }
      const error = await connect(server.url, { interaction, development: true }).then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(error).toBeInstanceOf(CallproofClientError)
      expect((error as CallproofClientError).code).toBe('ERR_DPOP_NOT_OFFERED')
      expect(asked).toBe(0)
    } finally {
      await server.close()
    }
  })
})
