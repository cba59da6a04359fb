/**
 * Per-user authorization of a third-party service that has its own authorization server: the
 * second way of issue 14 to give a tool a credential for its caller, next to token exchange
 * (`downstream.ts`).
 *
 * When the caller has not authorized the service yet, the tool answers with MCP URL-mode
 * elicitation (MCP 2025-11-25, error -32042): a URL the user opens in a browser to authorize the
 * service. The service's authorization server redirects back to this server's callback, which
 * exchanges the code (PKCE, DPoP) and stores the grant *under the caller who was asked*: issuer,
 * subject and client of the verified MCP caller. Grants are encrypted at rest (AES-256-GCM, the
 * caller's identity as additional data, so a blob copied under another caller's key does not
 * decrypt), refreshed when their access token expires, revocable, and never shared between
 * callers. Stores: {@link MemoryGrantStore}, and `createRedisGrantStore` in
 * `@callproof/server/redis`.
 *
 * @module
 */
import * as oauth from 'oauth4webapi'
import { decodeJwt } from 'jose'
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js'
import { UrlElicitationRequiredError } from '@modelcontextprotocol/sdk/types.js'
import { CallproofError, createProof } from '@callproof/core'
import { assertSecureUrl } from './issuer.js'
import { callerOf } from './tools.js'

/** Where encrypted grants live. Values are opaque strings; keys reveal nobody's identity. */
export interface GrantStore {
  get(key: string): Promise<string | undefined>
  /** Stores `value` for `ttlSeconds`. */
  set(key: string, value: string, ttlSeconds: number): Promise<void>
  /** Removes `key` and returns what it held (one-time reads of pending authorizations). */
  take(key: string): Promise<string | undefined>
  delete(key: string): Promise<void>
}

/**
 * An in-memory {@link GrantStore} (one process; grants are lost on restart).
 *
 * @example
 * ```ts
 * const store = new MemoryGrantStore()
 * ```
 */
export class MemoryGrantStore implements GrantStore {
  readonly #entries = new Map<string, { value: string; expiresAt: number }>()

  async get(key: string): Promise<string | undefined> {
    const entry = this.#entries.get(key)
    if (entry === undefined) return undefined
    if (entry.expiresAt <= Date.now()) {
      this.#entries.delete(key)
      return undefined
    }
    return entry.value
  }

  async set(key: string, value: string, ttlSeconds: number): Promise<void> {
    this.#entries.set(key, { value, expiresAt: Date.now() + ttlSeconds * 1000 })
  }

  async take(key: string): Promise<string | undefined> {
    const value = await this.get(key)
    this.#entries.delete(key)
    return value
  }

  async delete(key: string): Promise<void> {
    this.#entries.delete(key)
  }

  /** The raw (encrypted) values, for tests that check what is at rest. */
  values(): string[] {
    return [...this.#entries.values()].map((e) => e.value)
  }
}

/** A third-party service a user authorizes once, at its own authorization server. */
export interface ThirdPartyService {
  /** The service's authorization server (its metadata is discovered). */
  readonly issuer: string
  /** This MCP server's client id there (a confidential client). */
  readonly clientId: string
  /** Its client secret (`client_secret_basic`). */
  readonly clientSecret: string
  /** The scopes to ask the user for. */
  readonly scopes: readonly string[]
  /** The service's resource identifier (RFC 8707), when its authorization server wants one. */
  readonly resource?: string
  /** Shown to the user with the elicitation. */
  readonly description?: string
}

/** Options of {@link createThirdPartyAuthorizations}. */
export interface ThirdPartyAuthorizationsOptions {
  readonly services: Readonly<Record<string, ThirdPartyService>>
  /** This server's callback URL, registered as the redirect URI at every service. */
  readonly callbackUrl: string
  /** Where grants are kept (encrypted). */
  readonly store: GrantStore
  /** 32 bytes: the AES-256-GCM key grants are encrypted with. Keep it out of the store. */
  readonly encryptionKey: Uint8Array
  /** How long a grant is kept without use, in seconds (default 30 days). */
  readonly grantTtlSeconds?: number
  /** How long an authorization may take, in seconds (default 600). */
  readonly pendingTtlSeconds?: number
  /** The key the services' tokens are bound to (DPoP). Default: a fresh P-256 key. */
  readonly dpopKey?: CryptoKeyPair
  /**
   * Confirm, before the user is sent to the service, that the person in the browser is the
   * caller who was asked: they sign in at the callers' authorization server (OpenID Connect, this
   * server as a private_key_jwt client) and must come back as the same issuer and subject.
   * Without it, an elicitation URL that reaches someone else (forwarded, phished) stores *their*
   * account under the asking caller — or, sent by an attacker to a victim, the victim's account
   * under the attacker. Required unless {@link ThirdPartyAuthorizationsOptions.allowUnconfirmedCallers}.
   */
  readonly confirmCaller?: {
    /** The callers' authorization server (the issuer of their MCP tokens). */
    readonly issuer: string
    /** This server's client id there. */
    readonly clientId: string
    /** Its private key (private_key_jwt). */
    readonly clientKey: CryptoKey
    /** This server's confirmation URL (registered redirect URI); mount {@link ThirdPartyAuthorizations.confirm} there. */
    readonly redirectUri: string
    /** A resource to name in the sign-in request, for servers that require one (RFC 8707). */
    readonly resource?: string
  }
  /**
   * Skip the caller confirmation: whoever completes an elicitation URL in a browser authorizes
   * for the caller who was asked. Only for deployments that bind the browser to the caller some
   * other way (or for tests).
   *
   * @deprecated Dangerous: a forwarded or phished elicitation URL stores the wrong person's
   * account. Use `confirmCaller`.
   */
  readonly allowUnconfirmedCallers?: boolean
}

/** A third-party credential for one caller. */
export interface ThirdPartyCredential {
  readonly service: string
  readonly scopes: readonly string[]
  /** Milliseconds since the epoch. */
  readonly expiresAt: number
  /** `fetch` with this credential (DPoP when the token is DPoP-bound). */
  fetch(url: string | URL, init?: RequestInit): Promise<Response>
}

/** Made by {@link createThirdPartyAuthorizations}. */
export interface ThirdPartyAuthorizations {
  /**
   * The credentials of the verified caller of this call. `get` throws the SDK's
   * `UrlElicitationRequiredError` (MCP error -32042) when the caller has not authorized the
   * service (or revoked it): the client shows the URL, the user authorizes, the tool is retried.
   */
  of(extra: { authInfo?: AuthInfo | undefined }): {
    get(service: string): Promise<ThirdPartyCredential>
  }
  /** The callback (mount it at `callbackUrl`'s path, GET): completes an authorization. */
  callback(request: Request): Promise<Response>
  /**
   * The caller confirmation (mount it at `confirmCaller.redirectUri`'s path, GET): checks who
   * signed in, then sends the browser on to the service. Answers 404 without `confirmCaller`.
   */
  confirm(request: Request): Promise<Response>
  /** Forgets the caller's grant for `service` (and revokes its refresh token where supported). */
  revoke(extra: { authInfo?: AuthInfo | undefined }, service: string): Promise<void>
}

interface StoredGrant {
  readonly accessToken: string
  readonly tokenType: string
  readonly refreshToken?: string
  readonly scopes: readonly string[]
  /** Milliseconds. */
  readonly expiresAt: number
  /** The thumbprint of the key the access token is bound to. */
  readonly jkt?: string
}

interface Pending {
  readonly who: string
  readonly service: string
  readonly verifier: string
  /** Which redirect may complete it: the caller confirmation, or the service's callback. */
  readonly step: 'confirm' | 'service'
}

function invalid(message: string): never {
  throw new CallproofError('ERR_INVALID_OPTIONS', `third-party authorizations: ${message}`)
}

const encoder = new TextEncoder()

/** A small page for the user's browser: fixed text only, no script, nothing from the request. */
function page(status: number, text: string): Response {
  return new Response(`<!doctype html><meta charset="utf-8"><title>${text}</title><p>${text}</p>`, {
    status,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      'content-security-policy': "default-src 'none'",
    },
  })
}
const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url')

async function sha256(text: string): Promise<string> {
  return b64(new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(text))))
}

/**
 * Who the caller is: the issuer that vouched for them, their subject and client. Read from the
 * token callproof verified (an opaque token is keyed by its own hash: no sharing either way).
 */
async function identityOf(authInfo: AuthInfo): Promise<string> {
  const { sub, clientId } = callerOf({ authInfo })
  let iss: string | undefined
  try {
    const claims = decodeJwt(authInfo.token)
    if (typeof claims.iss === 'string') iss = claims.iss
  } catch {
    iss = undefined
  }
  return JSON.stringify([iss ?? `token:${await sha256(authInfo.token)}`, sub, clientId])
}

/**
 * Builds per-user third-party authorizations. Options are checked here.
 *
 * @example
 * ```ts
 * const calendar = createThirdPartyAuthorizations({
 *   services: { calendar: { issuer: 'https://accounts.example', clientId, clientSecret, scopes: ['calendar:read'] } },
 *   callbackUrl: 'https://drive.example/downstream/callback',
 *   store: new MemoryGrantStore(),
 *   encryptionKey, // 32 random bytes from your secret store
 * })
 * app.get('/downstream/callback', (c) => calendar.callback(c.req.raw))
 * // in a tool: const credential = await calendar.of(extra).get('calendar')
 * ```
 * @see https://modelcontextprotocol.io/specification/2025-11-25/client/elicitation URL mode
 */
export function createThirdPartyAuthorizations(
  options: ThirdPartyAuthorizationsOptions,
): ThirdPartyAuthorizations {
  const callbackUrl = assertSecureUrl(options.callbackUrl, 'callbackUrl')
  if (!(options.encryptionKey instanceof Uint8Array) || options.encryptionKey.length !== 32) {
    invalid('encryptionKey must be 32 bytes')
  }
  if (typeof options.store?.get !== 'function' || typeof options.store.take !== 'function') {
    invalid('store must be a GrantStore')
  }
  const services = new Map<string, ThirdPartyService & { issuerUrl: URL }>()
  for (const [name, service] of Object.entries(options.services ?? {})) {
    let issuerUrl: URL
    try {
      issuerUrl = assertSecureUrl(service?.issuer, `service ${name} issuer`)
    } catch (error) {
      invalid((error as Error).message)
    }
    if (typeof service.clientId !== 'string' || service.clientId === '') {
      invalid(`service ${name} needs a clientId`)
    }
    if (typeof service.clientSecret !== 'string' || service.clientSecret === '') {
      invalid(`service ${name} needs a clientSecret`)
    }
    if (!Array.isArray(service.scopes) || service.scopes.length === 0) {
      invalid(`service ${name} needs scopes`)
    }
    services.set(name, { ...service, issuerUrl })
  }
  if (services.size === 0) invalid('services must name at least one service')
  const confirmCaller = options.confirmCaller
  const confirmIssuer =
    confirmCaller === undefined
      ? undefined
      : assertSecureUrl(confirmCaller.issuer, 'confirmCaller.issuer')
  const confirmRedirect =
    confirmCaller === undefined
      ? undefined
      : assertSecureUrl(confirmCaller.redirectUri, 'confirmCaller.redirectUri')
  if (confirmCaller === undefined && options.allowUnconfirmedCallers !== true) {
    invalid(
      'confirmCaller is required: without it a forwarded elicitation URL stores the wrong account (allowUnconfirmedCallers to skip it, knowingly)',
    )
  }
  if (confirmCaller !== undefined && !(confirmCaller.clientKey instanceof CryptoKey)) {
    invalid('confirmCaller.clientKey must be a private CryptoKey')
  }
  const grantTtl = options.grantTtlSeconds ?? 30 * 24 * 3600
  const pendingTtl = options.pendingTtlSeconds ?? 600
  const { store } = options

  const key = crypto.subtle.importKey(
    'raw',
    new Uint8Array(options.encryptionKey),
    'AES-GCM',
    false,
    ['encrypt', 'decrypt'],
  )
  async function seal(value: unknown, context: string): Promise<string> {
    const iv = crypto.getRandomValues(new Uint8Array(12))
    const data = await crypto.subtle.encrypt(
      { name: 'AES-GCM', iv, additionalData: encoder.encode(context) },
      await key,
      encoder.encode(JSON.stringify(value)),
    )
    return `v1.${b64(iv)}.${b64(new Uint8Array(data))}`
  }
  async function open<T>(sealed: string | undefined, context: string): Promise<T | undefined> {
    if (sealed === undefined) return undefined
    const [version, iv, data] = sealed.split('.')
    if (version !== 'v1' || iv === undefined || data === undefined) return undefined
    try {
      const plain = await crypto.subtle.decrypt(
        {
          name: 'AES-GCM',
          iv: Buffer.from(iv, 'base64url'),
          additionalData: encoder.encode(context),
        },
        await key,
        Buffer.from(data, 'base64url'),
      )
      return JSON.parse(new TextDecoder().decode(plain)) as T
    } catch {
      // Tampered, moved under another caller's key, or sealed with another key: no grant.
      return undefined
    }
  }

  const grantKey = async (who: string, service: string) =>
    `grant:${await sha256(JSON.stringify([who, service]))}`
  const grantContext = (who: string, service: string) => JSON.stringify(['grant', who, service])

  let dpopKey: Promise<CryptoKeyPair> | undefined = options.dpopKey
    ? Promise.resolve(options.dpopKey)
    : undefined
  const keyPair = () => (dpopKey ??= oauth.generateKeyPair('ES256'))
  let jkt: Promise<string> | undefined
  const thumbprint = () =>
    (jkt ??= keyPair().then(async (pair) => {
      const { calculateJwkThumbprint, exportJWK } = await import('jose')
      return calculateJwkThumbprint(await exportJWK(pair.publicKey))
    }))

  const servers = new Map<string, Promise<oauth.AuthorizationServer>>()
  const metadata = (service: ThirdPartyService & { issuerUrl: URL }) => {
    let found = servers.get(service.issuer)
    if (found === undefined) {
      found = oauth
        .discoveryRequest(service.issuerUrl, {
          algorithm: 'oauth2',
          ...insecureFor(service.issuerUrl),
        })
        .then((response) => oauth.processDiscoveryResponse(service.issuerUrl, response))
      found.catch(() => servers.delete(service.issuer))
      servers.set(service.issuer, found)
    }
    return found
  }
  const insecureFor = (url: URL) =>
    url.protocol === 'http:' ? { [oauth.allowInsecureRequests]: true } : {}

  /** Stores a pending authorization under a fresh state; returns the state and PKCE challenge. */
  async function pend(value: Pending): Promise<{ state: string; challenge: string }> {
    const state = oauth.generateRandomState()
    await store.set(
      `pending:${await sha256(state)}`,
      await seal(value, `pending:${state}`),
      pendingTtl,
    )
    return { state, challenge: await oauth.calculatePKCECodeChallenge(value.verifier) }
  }

  /** The service's authorization URL for a pending authorization of `who`. */
  async function serviceUrl(
    who: string,
    name: string,
    service: ThirdPartyService & { issuerUrl: URL },
  ): Promise<URL> {
    const as = await metadata(service)
    // The state names the caller who was asked: the grant that comes back is stored for them.
    const { state, challenge } = await pend({
      who,
      service: name,
      verifier: oauth.generateRandomCodeVerifier(),
      step: 'service',
    })
    const url = new URL(as.authorization_endpoint!)
    url.searchParams.set('client_id', service.clientId)
    url.searchParams.set('redirect_uri', callbackUrl.href)
    url.searchParams.set('response_type', 'code')
    url.searchParams.set('scope', service.scopes.join(' '))
    url.searchParams.set('state', state)
    url.searchParams.set('code_challenge', challenge)
    url.searchParams.set('code_challenge_method', 'S256')
    // No dpop_jkt: the callback may reach another instance, with another key. The code is for a
    // confidential client and PKCE-bound; the access token is bound to the completing instance's
    // key, and another instance refreshes it under its own (refresh tokens of confidential
    // clients are not key-bound, RFC 9449 §5).
    if (service.resource !== undefined) url.searchParams.set('resource', service.resource)
    return url
  }

  /** The sign-in URL that confirms the person in the browser is `who`. */
  async function confirmUrl(who: string, name: string): Promise<URL> {
    const as = await confirmServer()
    const { state, challenge } = await pend({
      who,
      service: name,
      verifier: oauth.generateRandomCodeVerifier(),
      step: 'confirm',
    })
    const url = new URL(as.authorization_endpoint!)
    url.searchParams.set('client_id', confirmCaller!.clientId)
    url.searchParams.set('redirect_uri', confirmRedirect!.href)
    url.searchParams.set('response_type', 'code')
    url.searchParams.set('scope', 'openid')
    url.searchParams.set('state', state)
    url.searchParams.set('code_challenge', challenge)
    url.searchParams.set('code_challenge_method', 'S256')
    if (confirmCaller!.resource !== undefined) {
      url.searchParams.set('resource', confirmCaller!.resource)
    }
    return url
  }

  let confirmMetadata: Promise<oauth.AuthorizationServer> | undefined
  const confirmServer = () => {
    confirmMetadata ??= oauth
      .discoveryRequest(confirmIssuer!, { algorithm: 'oidc', ...insecureFor(confirmIssuer!) })
      .then((response) => oauth.processDiscoveryResponse(confirmIssuer!, response))
    confirmMetadata.catch(() => (confirmMetadata = undefined))
    return confirmMetadata
  }

  async function elicit(
    who: string,
    name: string,
    service: ThirdPartyService & { issuerUrl: URL },
  ): Promise<never> {
    const url =
      confirmCaller === undefined
        ? await serviceUrl(who, name, service)
        : await confirmUrl(who, name)
    throw new UrlElicitationRequiredError(
      [
        {
          mode: 'url',
          elicitationId: url.searchParams.get('state')!,
          url: url.href,
          message: `Authorize ${service.description ?? name} for this server to use on your behalf.`,
        },
      ],
      `authorization of ${name} is required`,
    )
  }

  async function tokensFrom(
    service: ThirdPartyService,
    result: oauth.TokenEndpointResponse,
    previous?: StoredGrant,
  ): Promise<StoredGrant> {
    const refresh = result.refresh_token ?? previous?.refreshToken
    return {
      accessToken: result.access_token,
      tokenType: result.token_type.toLowerCase(),
      ...(refresh !== undefined ? { refreshToken: refresh } : {}),
      scopes: typeof result.scope === 'string' ? result.scope.split(' ') : [...service.scopes],
      expiresAt: Date.now() + ((result.expires_in ?? 300) - 10) * 1000,
      ...(result.token_type.toLowerCase() === 'dpop' ? { jkt: await thumbprint() } : {}),
    }
  }

  function credential(name: string, grant: StoredGrant): ThirdPartyCredential {
    return Object.freeze({
      service: name,
      scopes: Object.freeze([...grant.scopes]),
      expiresAt: grant.expiresAt,
      async fetch(url: string | URL, init: RequestInit = {}) {
        const target = new URL(url)
        const headers = new Headers(init.headers)
        const method = init.method ?? 'GET'
        if (grant.tokenType === 'dpop') {
          headers.set('authorization', `DPoP ${grant.accessToken}`)
          headers.set(
            'dpop',
            await createProof(await keyPair(), {
              htm: method.toUpperCase(),
              htu: `${target.origin}${target.pathname}`,
              accessToken: grant.accessToken,
            }),
          )
        } else {
          headers.set('authorization', `Bearer ${grant.accessToken}`)
        }
        return fetch(target, { ...init, method, headers, redirect: 'manual' })
      },
    })
  }

  const clientOf = (service: ThirdPartyService): [oauth.Client, oauth.ClientAuth] => [
    { client_id: service.clientId },
    oauth.ClientSecretBasic(service.clientSecret),
  ]

  return Object.freeze({
    of(extra: { authInfo?: AuthInfo | undefined }) {
      callerOf(extra)
      const authInfo = extra.authInfo!
      return Object.freeze({
        async get(name: string): Promise<ThirdPartyCredential> {
          const service = services.get(name)
          if (service === undefined || !Object.hasOwn(options.services, name)) {
            throw new CallproofError(
              'ERR_INVALID_OPTIONS',
              `no third-party service ${String(name).slice(0, 64)} is configured`,
            )
          }
          const who = await identityOf(authInfo)
          const at = await grantKey(who, name)
          const grant = await open<StoredGrant>(await store.get(at), grantContext(who, name))
          if (grant === undefined) return elicit(who, name, service)
          const current = grant.jkt === undefined || grant.jkt === (await thumbprint())
          if (grant.expiresAt > Date.now() && current) return credential(name, grant)
          if (grant.refreshToken === undefined) {
            await store.delete(at)
            return elicit(who, name, service)
          }
          const as = await metadata(service)
          const [client, auth] = clientOf(service)
          try {
            const response = await oauth.refreshTokenGrantRequest(
              as,
              client,
              auth,
              grant.refreshToken,
              {
                DPoP: oauth.DPoP(client, await keyPair()),
                ...insecureFor(service.issuerUrl),
              },
            )
            const refreshed = await tokensFrom(
              service,
              await oauth.processRefreshTokenResponse(as, client, response),
              grant,
            )
            await store.set(at, await seal(refreshed, grantContext(who, name)), grantTtl)
            return credential(name, refreshed)
          } catch (error) {
            // A revoked or expired refresh token: the user is asked again, nothing else is used.
            if (error instanceof oauth.ResponseBodyError) {
              await store.delete(at)
              return elicit(who, name, service)
            }
            throw error
          }
        },
      })
    },

    async confirm(request: Request): Promise<Response> {
      if (confirmCaller === undefined) return page(404, 'Not found.')
      const url = new URL(request.url)
      const state = url.searchParams.get('state')
      if (state === null || state.length > 256) {
        return page(400, 'Unknown or expired authorization.')
      }
      const pending = await open<Pending>(
        await store.take(`pending:${await sha256(state)}`),
        `pending:${state}`,
      )
      if (pending === undefined || pending.step !== 'confirm') {
        return page(400, 'Unknown or expired authorization.')
      }
      const service = services.get(pending.service)
      if (service === undefined) return page(400, 'Unknown or expired authorization.')
      let signedIn: { iss: string; sub: string }
      try {
        const as = await confirmServer()
        const client: oauth.Client = { client_id: confirmCaller.clientId }
        const params = oauth.validateAuthResponse(as, client, url, state)
        const response = await oauth.authorizationCodeGrantRequest(
          as,
          client,
          oauth.PrivateKeyJwt(confirmCaller.clientKey),
          params,
          confirmRedirect!.href,
          pending.verifier,
          { DPoP: oauth.DPoP(client, await keyPair()), ...insecureFor(confirmIssuer!) },
        )
        const result = await oauth.processAuthorizationCodeResponse(as, client, response, {
          requireIdToken: true,
        })
        const claims = oauth.getValidatedIdTokenClaims(result)!
        signedIn = { iss: claims.iss, sub: claims.sub }
      } catch {
        return page(400, 'The sign-in did not complete. Try again from your agent.')
      }
      const [iss, sub] = JSON.parse(pending.who) as [string, string, string]
      // The person in this browser must be the caller who was asked, at the same issuer.
      if (signedIn.iss !== iss || signedIn.sub !== sub) {
        return page(
          403,
          'This authorization was started by another account. Start it again from your own agent.',
        )
      }
      const next = await serviceUrl(pending.who, pending.service, service)
      return new Response(null, {
        status: 303,
        headers: { location: next.href, 'cache-control': 'no-store' },
      })
    },

    async callback(request: Request): Promise<Response> {
      const url = new URL(request.url)
      const state = url.searchParams.get('state')
      if (state === null || state.length > 256)
        return page(400, 'Unknown or expired authorization.')
      // One use only: a replayed callback finds nothing.
      const pending = await open<Pending>(
        await store.take(`pending:${await sha256(state)}`),
        `pending:${state}`,
      )
      if (pending === undefined || pending.step !== 'service') {
        return page(400, 'Unknown or expired authorization.')
      }
      const service = services.get(pending.service)
      if (service === undefined) return page(400, 'Unknown or expired authorization.')
      const as = await metadata(service)
      const [client, auth] = clientOf(service)
      try {
        const params = oauth.validateAuthResponse(as, client, url, state)
        const response = await oauth.authorizationCodeGrantRequest(
          as,
          client,
          auth,
          params,
          callbackUrl.href,
          pending.verifier,
          { DPoP: oauth.DPoP(client, await keyPair()), ...insecureFor(service.issuerUrl) },
        )
        const grant = await tokensFrom(
          service,
          await oauth.processAuthorizationCodeResponse(as, client, response),
        )
        await store.set(
          await grantKey(pending.who, pending.service),
          await seal(grant, grantContext(pending.who, pending.service)),
          grantTtl,
        )
      } catch {
        return page(400, 'The authorization did not complete. Try again from your agent.')
      }
      return page(200, 'Authorized. You can return to your agent.')
    },

    async revoke(extra: { authInfo?: AuthInfo | undefined }, name: string): Promise<void> {
      callerOf(extra)
      const who = await identityOf(extra.authInfo!)
      const service = services.get(name)
      if (service === undefined) return
      const at = await grantKey(who, name)
      const grant = await open<StoredGrant>(await store.take(at), grantContext(who, name))
      if (grant?.refreshToken === undefined) return
      const as = await metadata(service).catch(() => undefined)
      if (as?.revocation_endpoint === undefined) return
      const [client, auth] = clientOf(service)
      await oauth
        .revocationRequest(as, client, auth, grant.refreshToken, insecureFor(service.issuerUrl))
        .then((r) => oauth.processRevocationResponse(r))
        .catch(() => undefined)
    },
  })
}
