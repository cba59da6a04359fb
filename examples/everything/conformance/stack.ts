/**
 * The stack the MCP conformance suite's server scenarios run against (scripts/
 * conformance-server.mjs): the real development authorization server, examples/everything on
 * callproof, and a signing forward proxy whose token comes from a headless sign-in as `alice` on
 * the authorization server's real pages. Prints `proxy listening on <url>` when ready; stops on
 * SIGTERM or SIGINT. `--sdk v2` runs the server on the MCP SDK v2 (for the 2026-07-28 scenarios).
 *
 * @module
 */
import { createServer } from 'node:net'
import { startDevAuthServer, devInteraction } from '@callproof/dev-auth-server'
import { createCallproofFetch, systemBrowserInteraction } from '@callproof/client'
import { EVERYTHING_SCOPES, startEverything } from '../src/index.js'
import { startSigningProxy } from '../src/proxy.js'

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number }
      probe.close(() => resolve(port))
    })
  })
}

const sdk = process.argv.includes('--sdk') && process.argv.includes('v2') ? 'v2' : 'v1'

/** The authorization server must know the resource URI (with its port) before the server listens. */
async function startServers() {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    const auth = await startDevAuthServer({
      resources: [{ uri: `http://127.0.0.1:${port}/mcp`, scopes: [...EVERYTHING_SCOPES] }],
      logger: { warn: () => {}, info: () => {} },
    })
    try {
      return { auth, everything: await startEverything({ port, issuer: auth.issuer, sdk }) }
    } catch (error) {
      await auth.close()
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt === 3) throw error
    }
  }
}

const { auth, everything } = await startServers()
const pages = devInteraction({ user: 'alice' })
const interaction = systemBrowserInteraction({
  open: async (href) => {
    const callback = await pages.authorize(new URL(href), { reason: 'authorize' })
    await (await fetch(callback)).body?.cancel()
  },
})
const { fetch: signedFetch } = await createCallproofFetch(everything.url, {
  interaction,
  development: true,
  // The suite's own Mcp-Method/Mcp-Name headers go on as sent: what it tests is the server's
  // check of them (the proof binds the body either way).
  relayRoutingHeaders: true,
})
const proxy = await startSigningProxy({ target: everything.url, fetch: signedFetch })
process.stdout.write(
  `proxy listening on ${proxy.url} (server ${everything.url}, issuer ${auth.issuer})\n`,
)

const stop = () => {
  Promise.allSettled([proxy.close(), everything.close(), auth.close(), interaction.close()]).then(
    () => process.exit(0),
    () => process.exit(1),
  )
}
process.once('SIGTERM', stop)
process.once('SIGINT', stop)
