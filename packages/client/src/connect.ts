/**
 * The SDK v1 seam: `connect()` returns a connected `Client` of `@modelcontextprotocol/sdk` whose
 * transport signs every request and answers every challenge. With `v2.ts` (SDK v2) the only
 * modules that import an MCP SDK; everything else is SDK-neutral (`wiring.ts`).
 *
 * @module
 */

import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import {
  closeSessionWithTransport,
  connectOrClose,
  createCallproofFetch,
  type ConnectOptions,
} from './wiring.js'

/**
 * Connects to an MCP server with everything wired: a non-extractable key, discovery,
 * registration, DPoP-bound OAuth 2.1, a proof bound to every call, and challenges answered.
 *
 * @param serverUrl - the MCP endpoint (Streamable HTTP)
 * @param options - interaction (or client credentials), stores, development switches
 * @returns a connected SDK `Client`; its `close()` also closes the session's connections
 * @example
 * ```ts
 * const client = await connect('https://drive.example/mcp', { interaction: systemBrowserInteraction() })
 * const result = await client.callTool({ name: 'list_files', arguments: {} })
 * ```
 */
export async function connect(serverUrl: string | URL, options: ConnectOptions): Promise<Client> {
  const { fetch: signedFetch, session } = await createCallproofFetch(serverUrl, options)
  const client = new Client(options.clientInfo ?? { name: 'callproof-client', version: '0.1.0' }, {
    capabilities: {},
  })
  const transport = new StreamableHTTPClientTransport(new URL(serverUrl), { fetch: signedFetch })
  // client.close() closes the transport: the session's connections go with it.
  closeSessionWithTransport(transport, session)
  await connectOrClose(() => client.connect(transport), session)
  return client
}
