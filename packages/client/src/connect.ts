/**
 * The SDK seam: `connect()` returns a connected `Client` of `@modelcontextprotocol/sdk` whose
 * transport signs every request and answers every challenge. The only module that imports the
 * SDK, so moving to the SDK's v2 packages touches this file alone.
 *
 * @module
 */

import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { createChallengeFetch } from './challenges.js'
import { DpopNonces } from './fetch.js'
import { loadOrCreateKeyPair, MemoryKeyStore, type KeyAlgorithm, type KeyStore } from './keys.js'
import { CallproofSession, type SessionGrant, type SessionSettings } from './session.js'

/**
 * The options of {@link connect} besides {@link SessionGrant}.
 *
 * @example
 * ```ts
 * const settings: ConnectSettings = { development: true, keyStore: new FileKeyStore(path) }
 * ```
 */
export interface ConnectSettings extends Omit<SessionSettings, 'keyPair'> {
  /** The proof key pair; default: loaded from `keyStore` or generated (non-extractable). */
  keyPair?: CryptoKeyPair
  /** Where the key lives (default: memory). */
  keyStore?: KeyStore
  /** Key algorithm for a new key (default ES256). */
  keyAlgorithm?: KeyAlgorithm
  /** Authorizations per request before giving up (default 3). */
  maxAuthorizations?: number
  /** The MCP client's name and version. */
  clientInfo?: { name: string; version: string }
}

/**
 * Options of {@link connect} and {@link createCallproofFetch}: an `interaction` or
 * `clientCredentials` is required ({@link SessionGrant}), the rest is optional.
 *
 * @example
 * ```ts
 * const options: ConnectOptions = { interaction: systemBrowserInteraction(), development: true }
 * ```
 */
export type ConnectOptions = ConnectSettings & SessionGrant

/**
 * The pieces `connect()` wires, for custom stacks: a `fetch` for any MCP transport and the
 * session behind it.
 *
 * @example
 * ```ts
 * const { fetch, session } = await createCallproofFetch(url, { interaction })
 * const transport = new StreamableHTTPClientTransport(new URL(url), { fetch })
 * ```
 */
export async function createCallproofFetch(
  serverUrl: string | URL,
  options: ConnectOptions,
): Promise<{ fetch: typeof globalThis.fetch; session: CallproofSession }> {
  const keyPair =
    options.keyPair ??
    (await loadOrCreateKeyPair(options.keyStore ?? new MemoryKeyStore(), options.keyAlgorithm))
  const session = new CallproofSession(serverUrl, { ...options, keyPair })
  const fetch = createChallengeFetch(session, {
    nonces: new DpopNonces(),
    ...(options.maxAuthorizations !== undefined && {
      maxAuthorizations: options.maxAuthorizations,
    }),
  })
  return { fetch, session }
}

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
  const closeTransport = transport.close.bind(transport)
  transport.close = async () => {
    try {
      await closeTransport()
    } finally {
      await session.close()
    }
  }
  try {
    await client.connect(transport)
  } catch (err) {
    await session.close()
    throw err
  }
  return client
}
