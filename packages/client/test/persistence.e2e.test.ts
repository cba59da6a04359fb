import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DEV_CLIENT_ID, devInteraction } from '@callproof/dev-auth-server'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FileKeyStore, FileTokenStore } from '../src/index.js'
import { open, text } from './support/mcp.js'
import { startWorld, type World } from './support/world.js'

let world: World
beforeAll(async () => {
  world = await startWorld()
})
afterAll(() => world?.close())

describe('command-line persistence', () => {
  it('a second run reuses the stored key and DPoP-bound token without asking the user', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'callproof-cli-'))
    const run = async () => {
      const interaction = devInteraction({ user: 'bob' })
      const { client } = await open(world.drive.url, {
        interaction,
        development: true,
        scopes: ['drive:read'],
        keyStore: new FileKeyStore(join(dir, 'key.json')),
        tokenStore: await FileTokenStore.open(join(dir, 'tokens.json')),
      })
      const who = JSON.parse(text(await client.callTool({ name: 'whoami', arguments: {} })))
      await client.close()
      return { who, pages: interaction.pages.length }
    }
    const first = await run()
    const second = await run()
    expect(first.pages).toBeGreaterThan(0)
    expect(second.pages).toBe(0)
    expect(second.who.jkt).toBe(first.who.jkt)
  })

  it('uses a pre-registered client without dynamic registration', async () => {
    const registrations: string[] = []
    const counting: typeof fetch = async (input, init) => {
      if (String(input).includes('/reg')) registrations.push(String(input))
      return fetch(input, init)
    }
    const { client } = await open(world.drive.url, {
      interaction: devInteraction({ user: 'alice' }),
      development: true,
      scopes: ['drive:read'],
      registration: { clientId: DEV_CLIENT_ID },
      fetch: counting,
    })
    const who = JSON.parse(text(await client.callTool({ name: 'whoami', arguments: {} })))
    expect(who.clientId).toBe(DEV_CLIENT_ID)
    expect(registrations).toEqual([])
    await client.close()
  })
})
