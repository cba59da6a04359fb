/**
 * `@callproof/client/v2`: the same client on the MCP TypeScript SDK v2
 * (`@modelcontextprotocol/client` 2.x), the SDK v2 seam. Everything `@callproof/client` exports,
 * with a `connect()` that returns SDK v2's `Client`, so moving a client from SDK v1 to v2 is one
 * import:
 *
 * ```ts
 * import { connect, systemBrowserInteraction } from '@callproof/client/v2'
 * ```
 *
 * The client negotiates the protocol revision (`versionNegotiation: { mode: 'auto' }` by
 * default): 2026-07-28 with servers that offer it (stateless requests, `MCP-Protocol-Version`,
 * `Mcp-Method` / `Mcp-Name` headers, Multi Round-Trip Requests), the 2025-11-25 `initialize`
 * handshake with servers that do not. Each request carries its own proof either way.
 *
 * @example
 * ```ts
 * import { connect, systemBrowserInteraction } from '@callproof/client/v2'
 * const client = await connect('https://drive.example/mcp', { interaction: systemBrowserInteraction() })
 * await client.callTool({ name: 'list_files', arguments: {} })
 * ```
 * @packageDocumentation
 */

import {
  Client,
  StreamableHTTPClientTransport,
  type ClientOptions,
} from '@modelcontextprotocol/client'
import {
  closeSessionWithTransport,
  connectOrClose,
  createCallproofFetch,
  type ConnectOptions,
} from './wiring.js'

export * from './api.js'

/**
 * Options of the SDK v2 {@link connect}: those of `@callproof/client`'s `connect()`, plus what
 * SDK v2's `Client` takes besides them.
 *
 * @example
 * ```ts
 * const options: ConnectOptionsV2 = { interaction, versionNegotiation: { mode: { pin: '2026-07-28' } } }
 * ```
 */
export type ConnectOptionsV2 = ConnectOptions & {
  /**
   * Which protocol revision to speak (SDK v2 `ClientOptions.versionNegotiation`). Default
   * `{ mode: 'auto' }`: 2026-07-28 where the server offers it, else the 2025-11-25 handshake.
   * `{ mode: 'legacy' }` always runs the 2025-11-25 handshake; `{ mode: { pin: '2026-07-28' } }`
   * refuses servers without that revision.
   */
  versionNegotiation?: ClientOptions['versionNegotiation']
  /**
   * Capabilities to declare (default none). Declare `elicitation`, `sampling` or `roots` and set
   * their handlers on the returned client to answer a server's Multi Round-Trip input requests.
   */
  capabilities?: ClientOptions['capabilities']
  /** Multi Round-Trip Requests settings (SDK v2 `ClientOptions.inputRequired`). */
  inputRequired?: ClientOptions['inputRequired']
}

/**
 * Connects to an MCP server with SDK v2: a non-extractable key, discovery, registration,
 * DPoP-bound OAuth 2.1, a proof bound to every request (and agreeing with its `Mcp-Method` /
 * `Mcp-Name` headers), and challenges answered, on either protocol revision.
 *
 * @param serverUrl - the MCP endpoint (Streamable HTTP)
 * @param options - interaction (or client credentials), stores, development switches, and SDK v2
 * `Client` options
 * @returns a connected SDK v2 `Client`; its `close()` also closes the session's connections
 * @example
 * ```ts
 * const client = await connect('https://drive.example/mcp', { interaction: systemBrowserInteraction() })
 * const result = await client.callTool({ name: 'list_files', arguments: {} })
 * ```
 */
export async function connect(serverUrl: string | URL, options: ConnectOptionsV2): Promise<Client> {
  const { fetch: signedFetch, session } = await createCallproofFetch(serverUrl, options)
  const client = new Client(options.clientInfo ?? { name: 'callproof-client', version: '0.1.0' }, {
    capabilities: options.capabilities ?? {},
    versionNegotiation: options.versionNegotiation ?? { mode: 'auto' },
    ...(options.inputRequired !== undefined && { inputRequired: options.inputRequired }),
  })
  // Redirects are never followed by the proof fetch (a token must not travel to another URL);
  // the transport reports a redirect as the error it is.
  const transport = new StreamableHTTPClientTransport(new URL(serverUrl), { fetch: signedFetch })
  closeSessionWithTransport(transport, session)
  await connectOrClose(() => client.connect(transport), session)
  return client
}
