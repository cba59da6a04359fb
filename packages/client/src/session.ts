/**
 * The client's state for one MCP server: discovery, registration, the DPoP-bound session token,
 * and the authorizations that challenges ask for. Authorizations run one at a time, so concurrent
 * requests that hit the same 401 trigger one login, not sixteen.
 *
 * @module
 */

import type * as oauth from 'oauth4webapi'
import { argsDigest } from '@callproof/core'
import {
  assertAlgorithmSupported,
  discoverAuthorizationServer,
  discoverProtectedResource,
  type ProtectedResource,
} from './discovery.js'
import { CallproofClientError } from './errors.js'
import { assertSafeUrl, closeGuardedConnections, type UrlPolicy } from './guards.js'
import type { Interaction, InteractionContext } from './interaction.js'
import { proofAlgorithms } from './keys.js'
import { agentGrantClient, agentGrantOf, runAgentGrant, type AgentGrant } from './grants/agent.js'
import type { EnterpriseAuthorizationOptions } from './grants/enterprise.js'
import type { WorkloadIdentityOptions } from './grants/workload.js'
import { discoverResource } from './legacy-discovery.js'
import {
  authorizationCodeFlow,
  httpOptions,
  oauthContext,
  refreshTokens,
  type OAuthContext,
} from './oauth.js'
import { clientAuthentication, resolveClient, type RegistrationOptions } from './registration.js'
import { MemoryTokenStore, type TokenSet, type TokenStore } from './stores.js'

/**
 * A client without a user (an agent): the client credentials grant.
 *
 * @example
 * ```ts
 * const cc: ClientCredentialsOptions = { clientId: 'agent-1', privateKey: pem, alg: 'ES256' }
 * ```
 */
export interface ClientCredentialsOptions {
  /** The pre-registered client id. */
  clientId: string
  /** `private_key_jwt`: a private `CryptoKey` or a PKCS #8 PEM. */
  privateKey?: CryptoKey | string
  /** The assertion's algorithm (default ES256). */
  alg?: string
  /** The assertion key's `kid`. */
  kid?: string
  /** `client_secret_basic` instead, for servers without private_key_jwt. */
  clientSecret?: string
}

/**
 * The grants of agents without a user at the keyboard, at most one of them per session.
 *
 * @example
 * ```ts
 * const grants: AgentGrants = { workloadIdentity: { clientId: 'agent', assertion: { env: 'TOKEN' } } }
 * ```
 */
export interface AgentGrants {
  /** Client credentials grant instead of user authorization. */
  clientCredentials?: ClientCredentialsOptions
  /**
   * Enterprise-managed authorization: the user's ID token traded at the enterprise IdP for an
   * ID-JAG, presented with the JWT-bearer grant (see docs/guides/agents-without-a-user.md).
   */
  enterpriseAuthorization?: EnterpriseAuthorizationOptions
  /** Workload identity federation: the platform's JWT for this workload, with the JWT-bearer grant. */
  workloadIdentity?: WorkloadIdentityOptions
}

/**
 * Who obtains the tokens, as the session requires at run time: an interaction (a user signs in),
 * an agent grant (client credentials, enterprise-managed authorization or workload identity
 * federation: no user at the keyboard), or both (the agent grant is then used). Options with
 * neither do not compile; JavaScript callers get `ERR_INVALID_OPTIONS` when the session is created.
 *
 * @example
 * ```ts
 * const user: SessionGrant = { interaction: systemBrowserInteraction() }
 * const agent: SessionGrant = { clientCredentials: { clientId: 'agent-1', privateKey: pem } }
 * ```
 */
export type SessionGrant =
  | ({
      /** Who approves authorization requests. */
      interaction: Interaction
    } & AgentGrants)
  | ({ interaction?: Interaction } & AgentGrants & {
        clientCredentials: ClientCredentialsOptions
      })
  | ({ interaction?: Interaction } & AgentGrants & {
        enterpriseAuthorization: EnterpriseAuthorizationOptions
      })
  | ({ interaction?: Interaction } & AgentGrants & { workloadIdentity: WorkloadIdentityOptions })

/**
 * The options of a {@link CallproofSession} besides {@link SessionGrant}.
 *
 * @example
 * ```ts
 * const settings: SessionSettings = { keyPair, development: true }
 * ```
 */
export interface SessionSettings {
  /** The proof key pair (non-extractable). */
  keyPair: CryptoKeyPair
  /** Registration: pre-registered client, metadata document URL, or dynamic registration metadata. */
  registration?: RegistrationOptions
  /** Token store (default: memory). */
  tokenStore?: TokenStore
  /** Scopes to request initially (default: the challenge's `scope`, else `scopes_supported`). */
  scopes?: readonly string[]
  /**
   * Development: allows http and loopback addresses (never in production) for the MCP server and
   * the authorization server, and tells the interaction so (`InteractionContext.development`):
   * `systemBrowserInteraction()` then opens loopback http authorization URLs.
   */
  development?: boolean
  /** Allows private and link-local addresses for servers the client is told about. */
  allowPrivateNetworks?: boolean
  /**
   * Whether only DPoP-bound tokens are acceptable (default `true`). By default a session refuses,
   * before registering or asking anyone to sign in, a server whose protected resource metadata
   * (RFC 9728) does not offer DPoP (`dpop_bound_access_tokens_required: true`, or DPoP algorithms
   * in the metadata or its challenge): `ERR_DPOP_NOT_OFFERED`; and it refuses a Bearer token from
   * the authorization server: `ERR_TOKEN_NOT_BOUND`. `false` opts in to unbound (Bearer) tokens
   * for the one server this session talks to: anyone who copies such a token can use it until it
   * expires. (The conformance client sets it.)
   */
  requireBoundTokens?: boolean
  /**
   * Refuse, before registration and sign-in, a server that does not offer DPoP (default `true`
   * unless `requireBoundTokens` is false). `false` skips only this early check, and tokens must
   * still be DPoP-bound: for a tool that measures servers whatever their metadata says
   * (`callproof scan`), not for using a server.
   */
  requireDpopOffer?: boolean
  /**
   * The underlying fetch. Requests a server steered the client to (discovery, OAuth) reach it with
   * `init.dispatcher` set to the SSRF guard's agent: pass `init` on unchanged, or those connections
   * are no longer pinned to the addresses the guard checked (see `guardedFetch`).
   */
  fetch?: typeof fetch
  /**
   * Accept servers of the 2025-03-26 MCP revision, which publish no protected resource metadata
   * (RFC 9728): the authorization server is then the one at the server's origin (its RFC 8414
   * metadata, else the default paths `/authorize`, `/token`, `/register`). Default `false`. A
   * weaker mode: nothing the server publishes names its authorization server, so the choice is
   * not bound to the resource; use it only for a server you know is of that revision. Used only
   * when every well-known URL answers 404 and no challenge names a metadata URL.
   */
  legacyDiscovery?: boolean
}

/**
 * Options of a {@link CallproofSession}: the settings and who obtains tokens ({@link SessionGrant}).
 *
 * @example
 * ```ts
 * const options: SessionOptions = { keyPair, interaction, development: true }
 * ```
 */
export type SessionOptions = SessionSettings & SessionGrant

/**
 * A per-call approval request for one `tools/call`.
 *
 * @example
 * ```ts
 * const call: ToolCall = { tool: 'share_file', arguments: { path: 'a.txt', with: 'bob' } }
 * ```
 */
export interface ToolCall {
  /** `params.name`. */
  tool: string
  /** `params.arguments` (sent for display; the digest is what the server checks). */
  arguments: unknown
}

/**
 * The state for one MCP server. Use through `connect()` / `createCallproofFetch()`; exported for
 * custom stacks and tests.
 *
 * @example
 * ```ts
 * const session = new CallproofSession('https://drive.example/mcp', { keyPair, interaction })
 * const tokens = await session.authorize({ reason: 'authorize' })
 * ```
 */
export class CallproofSession {
  /** The MCP endpoint. */
  readonly serverUrl: URL
  /** The options, validated. */
  readonly options: SessionOptions
  /** The token store. */
  readonly store: TokenStore
  /**
   * What server-supplied URLs may point at. One object per session: the SSRF guard keeps one
   * connection pool per policy object, which {@link CallproofSession.close} closes.
   */
  readonly urlPolicy: UrlPolicy
  #resource: ProtectedResource | undefined
  #oauth: OAuthContext | undefined
  /** The agent grant, when no user authorizes. */
  readonly #agent: AgentGrant | undefined
  /** Discovered with the 2025-03-26 revision's discovery (no protected resource metadata). */
  #legacy = false
  /** The server challenged with the `DPoP` scheme (or DPoP `algs`): it offers DPoP. */
  #dpopChallenged = false
  #redirectUri: string | undefined
  #queue: Promise<unknown> = Promise.resolve()

  /** @throws {@link CallproofClientError} `ERR_INVALID_OPTIONS` on bad options */
  constructor(serverUrl: string | URL, options: SessionOptions) {
    try {
      this.serverUrl = new URL(serverUrl)
    } catch (err) {
      throw new CallproofClientError(
        'ERR_INVALID_OPTIONS',
        `server URL ${String(serverUrl)} is not a URL`,
        {
          cause: err,
        },
      )
    }
    if (!options.keyPair?.privateKey || !options.keyPair.publicKey) {
      throw new CallproofClientError('ERR_INVALID_OPTIONS', 'keyPair is required')
    }
    proofAlgorithms(options.keyPair)
    // The type says so too (SessionGrant); this is for JavaScript callers.
    this.#agent = agentGrantOf(options)
    if (!options.interaction && !this.#agent) {
      throw new CallproofClientError(
        'ERR_INVALID_OPTIONS',
        'an interaction (or an agent grant: clientCredentials, enterpriseAuthorization or workloadIdentity) is required',
      )
    }
    if (
      options.clientCredentials &&
      options.clientCredentials.privateKey === undefined &&
      options.clientCredentials.clientSecret === undefined
    ) {
      throw new CallproofClientError(
        'ERR_INVALID_OPTIONS',
        'clientCredentials needs privateKey (private_key_jwt) or clientSecret',
      )
    }
    if (
      options.scopes !== undefined &&
      (!Array.isArray(options.scopes) ||
        !options.scopes.every(
          (x) => typeof x === 'string' && /^[\x21\x23-\x5b\x5d-\x7e]+$/.test(x),
        ))
    ) {
      throw new CallproofClientError('ERR_INVALID_OPTIONS', 'scopes must be RFC 6749 scope tokens')
    }
    const cimd = options.registration?.clientMetadataUrl
    if (cimd !== undefined) {
      let url: URL | undefined
      try {
        url = new URL(cimd)
      } catch {
        url = undefined
      }
      // A client ID metadata document is fetched by the authorization server: it must be https
      // with a path, or the client id would not identify one document.
      if (url?.protocol !== 'https:' || url.pathname === '/') {
        throw new CallproofClientError(
          'ERR_INVALID_OPTIONS',
          `clientMetadataUrl ${cimd} must be an https URL with a path`,
        )
      }
    }
    this.options = options
    this.store = options.tokenStore ?? new MemoryTokenStore()
    this.urlPolicy = {
      allowLoopbackHttp: options.development === true,
      allowPrivateNetworks: options.allowPrivateNetworks === true,
    }
  }

  /** The protected resource (after discovery). */
  get resource(): ProtectedResource | undefined {
    return this.#resource
  }

  /** The algorithms this client's proofs use. */
  get algorithms(): readonly string[] {
    return proofAlgorithms(this.options.keyPair)
  }

  /** Runs `task` after every earlier authorization finished (one login at a time). */
  #serialize<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(task, task)
    this.#queue = run.catch(() => undefined)
    return run
  }

  /**
   * Discovers the server's protected resource metadata and its authorization server (once), and
   * checks that both accept this client's proof algorithm.
   *
   * @param resourceMetadataUrl - `resource_metadata` from a challenge
   * @param challengeAlgs - `algs` from a challenge
   * @param dpopChallenge - whether the server challenged with the `DPoP` scheme
   * @throws {@link CallproofClientError} `ERR_DPOP_NOT_OFFERED` (unless `requireBoundTokens` is
   * false) when neither the metadata nor a challenge offers DPoP, before any registration
   */
  async discover(
    resourceMetadataUrl?: string,
    challengeAlgs?: string,
    dpopChallenge = false,
  ): Promise<OAuthContext> {
    if (challengeAlgs !== undefined || dpopChallenge) this.#dpopChallenged = true
    if (this.#oauth && this.#resource) return this.#oauth
    await assertSafeUrl(this.serverUrl, this.urlPolicy)
    const discovery = {
      urlPolicy: this.urlPolicy,
      ...(this.options.fetch && { fetch: this.options.fetch }),
    }
    const { resource, legacyAuthorizationServer } = await discoverResource(
      this.serverUrl,
      resourceMetadataUrl,
      discovery,
      this.options.legacyDiscovery === true,
    )
    if (
      this.options.requireBoundTokens !== false &&
      this.options.requireDpopOffer !== false &&
      !this.#dpopChallenged &&
      !offersDpop(resource) &&
      !offersDpop({ metadata: legacyAuthorizationServer ?? {} })
    ) {
      // Said now, before a registration or a sign-in that could only end in a Bearer token.
      throw new CallproofClientError(
        'ERR_DPOP_NOT_OFFERED',
        `${this.serverUrl.href} does not offer DPoP-bound tokens (its protected resource metadata does not say dpop_bound_access_tokens_required: true); callproof does not sign in for a bearer token. To accept unbound tokens for this server, create its session with requireBoundTokens: false`,
      )
    }
    const ours = this.algorithms
    if (challengeAlgs !== undefined)
      assertAlgorithmSupported(challengeAlgs, ours, this.serverUrl.origin)
    assertAlgorithmSupported(
      resource.metadata.dpop_signing_alg_values_supported,
      ours,
      resource.resource,
    )
    const issuer = resource.metadata.authorization_servers?.[0] as string
    const as = legacyAuthorizationServer ?? (await discoverAuthorizationServer(issuer, discovery))
    assertAlgorithmSupported(as.dpop_signing_alg_values_supported, ours, as.issuer)
    const http = httpOptions(this.urlPolicy, this.options.fetch)
    let client: oauth.Client
    let clientAuth: oauth.ClientAuth
    if (this.#agent) {
      ;({ client, clientAuth } = await agentGrantClient(this.#agent))
    } else {
      this.#redirectUri = await this.options.interaction?.redirectUri()
      const stored = await resolveClient(
        as,
        this.#redirectUri,
        this.options.registration ?? {},
        this.store,
        http,
      )
      client = { client_id: stored.clientId }
      clientAuth = clientAuthentication(stored)
    }
    this.#resource = resource
    this.#legacy = legacyAuthorizationServer !== undefined
    this.#oauth = oauthContext(as, client, clientAuth, this.options.keyPair, this.urlPolicy, {
      ...(this.options.fetch && { fetch: this.options.fetch }),
      ...(this.options.requireBoundTokens !== undefined && {
        requireBoundTokens: this.options.requireBoundTokens,
      }),
    })
    return this.#oauth
  }

  /**
   * Fetches the protected resource metadata again and, when it now names another authorization
   * server, forgets the old one, so the next authorization discovers, registers with (SEP-2352)
   * and asks the new one. Called when a token was refused and could not be refreshed.
   *
   * @param resourceMetadataUrl - `resource_metadata` from the refusal's challenge
   * @returns whether the authorization server changed
   */
  rediscover(resourceMetadataUrl?: string): Promise<boolean> {
    return this.#serialize(async () => {
      // Legacy discovery has no document to look at again.
      if (!this.#oauth || !this.#resource || this.#legacy) return false
      const fresh = await discoverProtectedResource(this.serverUrl, resourceMetadataUrl, {
        urlPolicy: this.urlPolicy,
        ...(this.options.fetch && { fetch: this.options.fetch }),
      })
      const next = fresh.metadata.authorization_servers?.[0]
      const current = this.#resource.metadata.authorization_servers?.[0]
      if (next === current && fresh.resource === this.#resource.resource) return false
      this.#oauth = undefined
      this.#resource = undefined
      return true
    })
  }

  /** The stored session token for this server's issuer and resource, if any. */
  async token(): Promise<TokenSet | undefined> {
    if (!this.#oauth || !this.#resource) return undefined
    return this.store.get(this.#oauth.as.issuer, this.#resource.resource)
  }

  #initialScopes(challengeScope: string | undefined): readonly string[] | undefined {
    if (this.options.scopes) return this.options.scopes
    if (challengeScope) return challengeScope.split(' ').filter(Boolean)
    const supported = this.#resource?.metadata.scopes_supported
    return Array.isArray(supported) ? supported : undefined
  }

  /**
   * The stored token when it replaced `refused` while this request waited: concurrent requests
   * refused for the same token then share one refresh or login. Refreshing twice would present a
   * rotated refresh token again, which an authorization server treats as theft (OAuth 2.1 §4.3.1)
   * and answers by revoking the grant.
   */
  async #newerThan(refused: TokenSet | null | undefined): Promise<TokenSet | undefined> {
    // undefined: the caller asks for a new token unconditionally; null: the refused request
    // carried no token at all (so any stored token is newer than what it sent).
    if (refused === undefined) return undefined
    const current = await this.token()
    if (current === undefined) return undefined
    return refused === null || current.accessToken !== refused.accessToken ? current : undefined
  }

  /**
   * Obtains and stores a new session token: a user authorization (with the scopes, `acr_values`
   * and `max_age` given) or, for agents, the client credentials grant.
   *
   * @param request - why, and what to ask for; `refused`: the token the refused request carried
   * (`null`: none), so that a token another request obtained meanwhile is used instead
   */
  authorize(request: {
    reason: InteractionContext['reason']
    scopes?: readonly string[]
    challengeScope?: string
    acrValues?: readonly string[]
    maxAge?: number
    refused?: TokenSet | null
  }): Promise<TokenSet> {
    return this.#serialize(async () => {
      const ctx = await this.discover()
      const newer = await this.#newerThan(request.refused)
      if (newer) return newer
      const resource = (this.#resource as ProtectedResource).resource
      const scopes = request.scopes ?? this.#initialScopes(request.challengeScope)
      let tokens: TokenSet
      if (this.#agent) {
        tokens = await runAgentGrant(ctx, this.#agent, { resource, ...(scopes && { scopes }) })
      } else {
        tokens = await authorizationCodeFlow(
          ctx,
          this.options.interaction as Interaction,
          this.#redirectUri as string,
          {
            resource,
            reason: request.reason,
            ...(scopes && { scopes }),
            ...(request.acrValues && { acrValues: request.acrValues }),
            ...(request.maxAge !== undefined && { maxAge: request.maxAge }),
          },
        )
      }
      await this.store.set(ctx.as.issuer, resource, tokens)
      return tokens
    })
  }

  /**
   * Refreshes the session token (rotation kept); `undefined` when there is nothing to refresh
   * with or the authorization server refused.
   *
   * @param refused - the token the refused request carried
   */
  refresh(refused?: TokenSet | null): Promise<TokenSet | undefined> {
    return this.#serialize(async () => {
      const ctx = await this.discover()
      const newer = await this.#newerThan(refused)
      if (newer) return newer
      const current = await this.token()
      if (current?.refreshToken === undefined) return undefined
      try {
        const tokens = await refreshTokens(ctx, current)
        await this.store.set(ctx.as.issuer, current.resource, tokens)
        return tokens
      } catch (err) {
        if (err instanceof CallproofClientError && err.code === 'ERR_TOKEN_REQUEST_FAILED') {
          await this.store.delete(ctx.as.issuer, current.resource)
          return undefined
        }
        throw err
      }
    })
  }

  /**
   * Closes the connections the session keeps open to the servers it was steered to (discovery,
   * registration, token endpoint), after the requests in flight. `client.close()` of a client
   * from `connect()` calls it; with `createCallproofFetch()`, call it when done. The session stays
   * usable: a later request opens new connections.
   *
   * @example
   * ```ts
   * const { fetch, session } = await createCallproofFetch(url, { interaction })
   * // …
   * await session.close()
   * ```
   */
  async close(): Promise<void> {
    await closeGuardedConnections(this.urlPolicy)
  }

  /**
   * Asks for the approval of exactly one tool call (RFC 9396 `authorization_details` of type
   * `mcp_tool_call` naming this resource, the tool and the arguments' digest). The returned token
   * is used for that call only and never stored.
   */
  approve(call: ToolCall): Promise<TokenSet> {
    return this.#serialize(async () => {
      const ctx = await this.discover()
      if (this.#agent) {
        throw new CallproofClientError(
          'ERR_ACCESS_DENIED',
          `tool ${call.tool} needs a per-call approval, which an agent without a user cannot give`,
        )
      }
      const resource = (this.#resource as ProtectedResource).resource
      const current = await this.token()
      const detail = {
        type: 'mcp_tool_call',
        resource,
        tool: call.tool,
        args: await argsDigest(call.arguments),
        arguments: call.arguments ?? {},
      }
      return authorizationCodeFlow(
        ctx,
        this.options.interaction as Interaction,
        this.#redirectUri as string,
        {
          resource,
          reason: 'approval',
          authorizationDetails: [detail],
          ...(current && current.scopes.length > 0 && { scopes: current.scopes }),
        },
      )
    })
  }
}

/**
 * Whether a server's metadata offers DPoP-bound tokens: it requires them
 * (`dpop_bound_access_tokens_required`, RFC 9728 §2) or names the DPoP algorithms it accepts. (A
 * `DPoP` challenge, RFC 9449 §7.1, offers them too: `#dpopChallenged`.)
 */
function offersDpop(resource: {
  metadata: Pick<oauth.ResourceServer, 'dpop_signing_alg_values_supported'> & {
    dpop_bound_access_tokens_required?: unknown
  }
}): boolean {
  const metadata = resource.metadata
  if (metadata.dpop_bound_access_tokens_required === true) return true
  const algs = metadata.dpop_signing_alg_values_supported
  return Array.isArray(algs) && algs.length > 0
}
