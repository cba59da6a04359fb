/**
 * The quickstart: a notes server and a client, wired to the development authorization server.
 *
 * @module
 */
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { startDevAuthServer, devInteraction } from '@callproof/dev-auth-server'
import { addNote } from './client.js'
import { startNotesServer } from './server.js'

export { addNote } from './client.js'
export { startNotesServer } from './server.js'

/** A free port on 127.0.0.1: the authorization server must know the notes server's URL first. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer().once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo
      probe.close(() => resolve(port))
    })
  })
}

/**
 * Starts the development authorization server and the notes server, adds a note as alice and
 * one as bob (signing in headlessly), and stops everything. Returns what the server answered.
 */
export async function runQuickstart(): Promise<string[]> {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}/mcp`
  const auth = await startDevAuthServer({
    resources: [{ uri: url, scopes: ['notes:write'] }],
    logger: { warn: () => undefined },
  })
  const server = startNotesServer(port, auth.issuer)
  try {
    const answers: string[] = []
    for (const [user, text] of [
      ['alice', 'buy milk'],
      ['alice', 'call bob'],
      ['bob', 'hello'],
    ] as const) {
      answers.push(await addNote(url, devInteraction({ user }), text))
    }
    return answers
  } finally {
    await new Promise<void>((resolve) => {
      server.close(() => resolve())
      if ('closeAllConnections' in server) server.closeAllConnections()
    })
    await auth.close()
  }
}
