// systemBrowserInteraction() keeps one redirect port for its life and listens on it only while an
// authorization is in flight. When another process takes the port in between, the next
// authorization must fail clearly (the port, what to do) before any browser opens. Real drive and
// development authorization server on 127.0.0.1; the "browser" signs in on the real pages.
import { createServer } from 'node:net'
import { devInteraction } from '@callproof/dev-auth-server'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connect, systemBrowserInteraction } from '../src/index.js'
import { startWorld, type World } from './support/world.js'

let world: World
beforeAll(async () => {
  world = await startWorld()
})
afterAll(() => world?.close())

/** A browser for tests: signs in on the real pages, then follows the redirect. */
function headlessBrowser() {
  const pages = devInteraction({ user: 'alice' })
  const opened: URL[] = []
  return {
    opened,
    open: async (href: string) => {
      const url = new URL(href)
      opened.push(url)
      const callback = await pages.authorize(url, { reason: 'authorize' })
      await (await fetch(callback)).body?.cancel()
    },
  }
}

describe('the redirect port taken between two authorizations', () => {
  it('fails the step-up with an error naming the port and what to do, and opens no browser', async () => {
    const browser = headlessBrowser()
    const interaction = systemBrowserInteraction({ open: browser.open })
    const port = Number(new URL(await interaction.redirectUri()).port)
    const client = await connect(world.drive.url, {
      interaction,
      development: true,
      scopes: ['drive:read', 'drive:write'],
    })
    await client.callTool({ name: 'list_files', arguments: {} })
    expect(browser.opened).toHaveLength(1)

    // Another process takes the port while nothing of ours listens on it.
    const squatter = createServer((socket) => socket.destroy())
    await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', resolve))
    try {
      // delete_file asks for MFA: the step-up cannot receive its redirect.
      await expect(
        client.callTool({ name: 'delete_file', arguments: { path: 'notes/todo.txt' } }),
      ).rejects.toMatchObject({
        code: 'ERR_INTERACTION_FAILED',
        message: expect.stringMatching(
          new RegExp(`127\\.0\\.0\\.1:${port}.*used by another process.*new interaction.*port`),
        ),
      })
      expect(browser.opened).toHaveLength(1)
    } finally {
      await new Promise<void>((resolve) => squatter.close(() => resolve()))
    }

    // Once the port is free again, the same interaction works again.
    const deleted = await client.callTool({
      name: 'delete_file',
      arguments: { path: 'notes/todo.txt' },
    })
    expect((deleted as { isError?: boolean }).isError).not.toBe(true)
    expect(browser.opened).toHaveLength(2)
    await client.close()
  })
})
