/**
 * Where tokens live: keyed per authorization server (issuer) and resource, so a token obtained for
 * one MCP server is never found, let alone sent, when talking to another.
 *
 * @module
 */

import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { CallproofClientError } from './errors.js'

/**
 * A token set as the client keeps it.
 *
 * @example
 * ```ts
 * const tokens: TokenSet = { accessToken, tokenType: 'dpop', issuer, resource, scopes: ['drive:read'] }
 * ```
 */
export interface TokenSet {
  /** The access token (a DPoP-bound JWT with callproof servers). */
  accessToken: string
  /** `dpop` for a sender-constrained token, `bearer` otherwise (lower case). */
  tokenType: string
  /** The refresh token, when the authorization server issued one (rotated on each refresh). */
  refreshToken?: string
  /** Expiry, milliseconds since the epoch, when the server said. */
  expiresAt?: number
  /** Scopes granted (or requested, when the server did not say). */
  scopes: string[]
  /** The authorization server that issued the token. */
  issuer: string
  /** The resource (RFC 8707) the token was requested for. */
  resource: string
}

/**
 * What a client registration needs to be remembered between runs.
 *
 * @example
 * ```ts
 * const client: StoredClient = { clientId: 'abc', tokenEndpointAuthMethod: 'none' }
 * ```
 */
export interface StoredClient {
  /** The client id (may be a client ID metadata document URL). */
  clientId: string
  /** The client secret of a confidential client. */
  clientSecret?: string
  /** How the client authenticates at the token endpoint. */
  tokenEndpointAuthMethod?: string
  /** The redirect URI it was registered with. */
  redirectUri?: string
}

/**
 * Token persistence. Keys are issuer + resource, never the server URL alone.
 *
 * @example
 * ```ts
 * await store.set(issuer, resource, tokens)
 * ```
 */
export interface TokenStore {
  /** The tokens for this issuer and resource. */
  get(issuer: string, resource: string): Promise<TokenSet | undefined>
  /** Stores (replaces) the tokens for this issuer and resource. */
  set(issuer: string, resource: string, tokens: TokenSet): Promise<void>
  /** Forgets the tokens for this issuer and resource. */
  delete(issuer: string, resource: string): Promise<void>
  /** A registration remembered for this issuer (and redirect URI). */
  getClient(issuer: string): Promise<StoredClient | undefined>
  /** Remembers a registration for this issuer. */
  setClient(issuer: string, client: StoredClient): Promise<void>
}

interface StoreState {
  tokens: Record<string, TokenSet>
  clients: Record<string, StoredClient>
}

function tokenKey(issuer: string, resource: string): string {
  // JSON of the pair: no separator that a URL could contain can make two pairs collide.
  return JSON.stringify([issuer, resource])
}

/**
 * The default store: tokens live as long as the process.
 *
 * @example
 * ```ts
 * const store = new MemoryTokenStore()
 * ```
 */
export class MemoryTokenStore implements TokenStore {
  protected state: StoreState = { tokens: {}, clients: {} }

  /** @inheritDoc */
  get(issuer: string, resource: string): Promise<TokenSet | undefined> {
    return Promise.resolve(this.state.tokens[tokenKey(issuer, resource)])
  }

  /** @inheritDoc */
  set(issuer: string, resource: string, tokens: TokenSet): Promise<void> {
    this.state.tokens[tokenKey(issuer, resource)] = tokens
    return this.persist()
  }

  /** @inheritDoc */
  delete(issuer: string, resource: string): Promise<void> {
    delete this.state.tokens[tokenKey(issuer, resource)]
    return this.persist()
  }

  /** @inheritDoc */
  getClient(issuer: string): Promise<StoredClient | undefined> {
    return Promise.resolve(this.state.clients[issuer])
  }

  /** @inheritDoc */
  setClient(issuer: string, client: StoredClient): Promise<void> {
    this.state.clients[issuer] = client
    return this.persist()
  }

  /** Called after every change; the memory store has nothing to do. */
  protected persist(): Promise<void> {
    return Promise.resolve()
  }
}

/**
 * Tokens in a JSON file (mode 0600) for the command line. Anyone who can read the file holds the
 * tokens, but DPoP-bound tokens are useless without the proof key (see `FileKeyStore`).
 *
 * @example
 * ```ts
 * const store = await FileTokenStore.open(`${home}/.callproof/tokens.json`)
 * ```
 */
export class FileTokenStore extends MemoryTokenStore {
  readonly #path: string

  private constructor(path: string) {
    super()
    this.#path = path
  }

  /** Opens (or starts) the store at `path`. */
  static async open(path: string): Promise<FileTokenStore> {
    const store = new FileTokenStore(path)
    try {
      const parsed = JSON.parse(await readFile(path, 'utf8')) as Partial<StoreState>
      store.state = { tokens: parsed.tokens ?? {}, clients: parsed.clients ?? {} }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new CallproofClientError('ERR_STORE', `cannot read token file ${path}`, {
          cause: err,
        })
      }
    }
    return store
  }

  /** Writes the whole state atomically with mode 0600. */
  protected override async persist(): Promise<void> {
    try {
      await mkdir(dirname(this.#path), { recursive: true, mode: 0o700 })
      const tmp = `${this.#path}.${process.pid}.tmp`
      await writeFile(tmp, JSON.stringify(this.state), { mode: 0o600 })
      await chmod(tmp, 0o600)
      await rename(tmp, this.#path)
    } catch (err) {
      throw new CallproofClientError('ERR_STORE', `cannot write token file ${this.#path}`, {
        cause: err,
      })
    }
  }
}
