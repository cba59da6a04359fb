import { devInteraction } from '@callproof/dev-auth-server'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { jwkThumbprint } from '@callproof/core'
import { connect, createCallproofFetch, generateProofKeyPair } from '../src/index.js'
import { startWorld, type World } from './support/world.js'

let world: World
beforeAll(async () => {
  world = await startWorld()
})
afterAll(() => world?.close())

function text(result: unknown): string {
  const content = (result as { content: Array<{ type: string; text: string }> }).content
  return content.map((c) => c.text).join('')
}

describe('connect() against the real drive and dev authorization server', () => {
  it('goes from the first 401 to a tool result', async () => {
    const interaction = devInteraction({ user: 'alice' })
    const keyPair = await generateProofKeyPair()
    const client = await connect(world.drive.url, {
      interaction,
      keyPair,
      development: true,
      scopes: ['drive:read'],
    })
    const who = JSON.parse(text(await client.callTool({ name: 'whoami', arguments: {} })))
    expect(who.sub).toBe('alice')
    // The token is bound (cnf.jkt) to the very key that signs the proofs.
    expect(who.jkt).toBe(
      await jwkThumbprint(await crypto.subtle.exportKey('jwk', keyPair.publicKey)),
    )
    const files = JSON.parse(text(await client.callTool({ name: 'list_files', arguments: {} })))
    expect(Array.isArray(files)).toBe(true)
    await client.close()
  })

  it('answers insufficient_scope by authorizing the union of scopes', async () => {
    const interaction = devInteraction({ user: 'alice' })
    const { fetch: f, session } = await createCallproofFetch(world.drive.url, {
      interaction,
      development: true,
      scopes: ['drive:read'],
    })
    const { Client } = await import('@modelcontextprotocol/sdk/client/index.js')
    const { StreamableHTTPClientTransport } =
      await import('@modelcontextprotocol/sdk/client/streamableHttp.js')
    const client = new Client({ name: 't', version: '1' })
    await client.connect(new StreamableHTTPClientTransport(new URL(world.drive.url), { fetch: f }))
    await client.callTool({ name: 'write_file', arguments: { path: 'notes/a.txt', content: 'hi' } })
    const token = await session.token()
    expect(token?.scopes).toEqual(expect.arrayContaining(['drive:read', 'drive:write']))
    const read = await client.callTool({ name: 'read_file', arguments: { path: 'notes/a.txt' } })
    expect(text(read)).toContain('hi')
    await client.close()
  })
})
