/**
 * The SDK-neutral wiring behind both `connect()`s (`@callproof/client` on SDK v1,
 * `@callproof/client/v2` on SDK v2): the key, the session and the signing, challenge-answering
 * `fetch` that any Streamable HTTP transport takes. Imports no MCP SDK.
 *
 * @module
 */

import { createChallengeFetch } from './challenges.js'
import { CallproofClientError } from './errors.js'
import { DpopNonces } from './fetch.js'
import { loadOrCreateKeyPair, MemoryKeyStore, type KeyAlgorithm, type KeyStore } from './keys.js'
import { CallproofSession, type SessionGrant, type SessionSettings } from './session.js'

/**
 * The options of `connect()` (either SDK line) besides {@link SessionGrant}.
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
  /**
   * For a proxy relaying another client's requests: pass their `Mcp-Method` / `Mcp-Name` headers
   * on unchecked, for the server to check (see `ProofSigner.relayRoutingHeaders`).
   */
  relayRoutingHeaders?: boolean
}

/**
 * Options of `connect()` and {@link createCallproofFetch}: an `interaction` or
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
    ...(options.relayRoutingHeaders === true && { relayRoutingHeaders: true }),
  })
  return { fetch, session }
}

/**
 * Makes `transport.close()` close the session's connections too, so `client.close()` of the SDK
 * client that owns the transport releases everything `connect()` opened.
 */
export function closeSessionWithTransport(
  transport: { close(): Promise<void> },
  session: CallproofSession,
): void {
  const closeTransport = transport.close.bind(transport)
  transport.close = async () => {
    try {
      await closeTransport()
    } finally {
      await session.close()
    }
  }
}

/**
 * The callproof error an SDK error wraps, if any: SDK v2 reports a failure of its connect-time
 * probe as its own `SdkError` with the fetch's error as `cause`, so a `ERR_DPOP_NOT_OFFERED` or
 * `ChallengeError` would otherwise reach the caller under another name than on SDK v1.
 */
function callproofErrorIn(err: unknown): CallproofClientError | undefined {
  let current = err
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    if (current instanceof CallproofClientError) return current
    current = current.cause
  }
  return undefined
}

/**
 * Runs an SDK client's `connect()`; when it fails (a refused sign-in, a server that is not MCP),
 * closes the session's connections before rethrowing, so nothing stays open behind the error. A
 * callproof error wrapped by the SDK is rethrown itself, so both SDK lines fail with the same
 * typed errors.
 */
export async function connectOrClose(
  connectClient: () => Promise<void>,
  session: CallproofSession,
): Promise<void> {
  try {
    await connectClient()
  } catch (err) {
    await session.close()
    throw callproofErrorIn(err) ?? err
  }
}
