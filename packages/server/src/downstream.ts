/**
 * Credentials for the other APIs a tool calls, obtained for the verified caller of each call.
 *
 * The flaw this closes: an MCP server that verifies every caller perfectly still lets bob act
 * with alice's authority if its tool reads one process-wide token for, say, the mail API. Here
 * a tool asks for a credential *for this call's caller*, and gets one that can only be that
 * caller's:
 *
 * - it is obtained by RFC 8693 token exchange: the caller's access token as `subject_token`, this
 *   server authenticated as itself (private_key_jwt), the downstream API as `resource`, the
 *   service's narrow `scope`. The caller's token is never forwarded.
 * - the issued token names the caller as `sub` and this server as `act` (RFC 8693 §4.1), and is
 *   DPoP-bound to this server's own key: a copy is useless to anyone else.
 * - by default every `get` exchanges anew, so the authorization server decides at every call: a
 *   caller whose grant was revoked there is refused at their next call, never served from a
 *   cache. With `reuseSeconds` a credential is reused for a while, only for the same caller
 *   (issuer, subject, client, key) presenting the same token, and never past that token.
 * - it lives in this instance's memory only, never in a shared store: it is bound to this
 *   instance's own key, which would otherwise have to be shared too (see `reuseSeconds`).
 *
 * @module
 */
import * as oauth from 'oauth4webapi'
import { decodeJwt } from 'jose'
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js'
import { CallproofError, createProof } from '@callproof/core'
import type { AuditSink } from './audit.js'
import { assertSecureUrl, discoverIssuer } from './issuer.js'
import { callerOf } from './tools.js'

/** The grant type of RFC 8693 §2.1. */
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
/** RFC 8693 §3: an OAuth 2.0 access token. */
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/
/** A token is not handed out this close to its expiry (seconds): it could expire in flight. */
const EXPIRY_MARGIN = 10

/** A downstream API a tool may call on its caller's behalf. */
export interface DownstreamService {
  /**
   * The API's resource identifier: sent as `resource` (RFC 8707) in the exchange, expected as the
   * `aud` of the issued token. Requests made with {@link DownstreamCredential.fetch} may only go
   * to URLs under it.
   */
  readonly resource: string
  /** The narrowest scopes the tools need there (at least one). */
  readonly scopes: readonly string[]
}

/** Options of {@link createDownstreamCredentials}. */
export interface DownstreamCredentialsOptions {
  /** The authorization server that exchanges tokens (the one that issued the callers' tokens). */
  issuer: string
  /** This MCP server's client id at `issuer`. */
  clientId: string
  /**
   * This MCP server's private key for private_key_jwt client authentication (RFC 7523), with the
   * `kid` of its registered public key when the server has several.
   */
  clientKey: CryptoKey | { readonly key: CryptoKey; readonly kid?: string }
  /** The key exchanged tokens are bound to (DPoP). Default: a fresh non-extractable P-256 key. */
  dpopKey?: CryptoKeyPair
  /** The downstream services by name, as tools ask for them. */
  services: Readonly<Record<string, DownstreamService>>
  /**
   * How long an exchanged credential may be reused for the same caller, in seconds (default 0:
   * every `get` is a token exchange). Reuse saves a round trip to the authorization server per
   * call, and costs exactly that much notice of revocation: a caller whose grant is revoked at
   * the authorization server keeps a reused credential for up to this long (never past their own
   * token, which the cache is keyed by). Credentials are reused within this instance only; they
   * are bound to its DPoP key and are never written to a shared store.
   */
  reuseSeconds?: number
  /**
   * At most this many exchanged tokens are kept for reuse (default 1000; the oldest is dropped
   * first). Only with `reuseSeconds`.
   */
  cacheSize?: number
  /** Timeout of each request to the authorization server, in milliseconds (default 5000). */
  timeoutMs?: number
  /**
   * Where to record each credential handed out or refused (`downstream` names the service, the
   * caller is named as in every audit event; never a token).
   */
  audit?: AuditSink
}

/** Why a tool got no credential. */
export type DownstreamCredentialErrorCode =
  /** The tool asked for a service that was not configured. */
  | 'ERR_DOWNSTREAM_UNKNOWN_SERVICE'
  /** The authorization server refused the exchange (policy, scope, expired caller token). */
  | 'ERR_DOWNSTREAM_REFUSED'
  /** The authorization server could not be reached or answered nonsense. */
  | 'ERR_DOWNSTREAM_UNAVAILABLE'
  /** A request with the credential was aimed outside the service's resource. */
  | 'ERR_DOWNSTREAM_WRONG_TARGET'

/**
 * No credential for this caller and service. The message names the service and the reason; it
 * never holds a token. A tool should answer its caller with it (an error naming the service),
 * never fall back to some other credential.
 *
 * @example
 * ```ts
 * try { await credentialsOf(extra).get('mail') } catch (e) {
 *   if (e instanceof DownstreamCredentialError) return { content: [{ type: 'text', text: e.message }], isError: true }
 *   throw e
 * }
 * ```
 */
export class DownstreamCredentialError extends Error {
  readonly code: DownstreamCredentialErrorCode
  /** The service the credential was for. */
  readonly service: string

  constructor(
    code: DownstreamCredentialErrorCode,
    service: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
    this.name = this.constructor.name
    this.code = code
    this.service = service
  }
}

/** A credential for one downstream service, for one caller. */
export interface DownstreamCredential {
  /** The service name. */
  readonly service: string
  /** The service's resource identifier (the token's `aud`). */
  readonly resource: string
  /** The caller it was issued for (`sub`). */
  readonly subject: string
  /** The scopes it carries. */
  readonly scopes: readonly string[]
  /** When it expires, in milliseconds since the epoch. */
  readonly expiresAt: number
  /**
   * The `Authorization` and `DPoP` headers for one request (a fresh proof each time), for an HTTP
   * client other than `fetch`. Refuses a URL outside the service's resource.
   */
  headers(method: string, url: string | URL): Promise<Record<string, string>>
  /**
   * `fetch` with this credential: the token in `Authorization: DPoP`, a proof for this method
   * and URL, one retry when the service asks for a DPoP nonce. Refuses a URL outside the
   * service's resource, so that a tool argument cannot send the token elsewhere.
   */
  fetch(url: string | URL, init?: RequestInit): Promise<Response>
}

/** The credentials of the caller of one tool call. */
export interface CallerCredentials {
  /**
   * A credential for `service`, for this caller only: exchanged now (or, with `reuseSeconds`,
   * reused when this caller already has one from the same token).
   *
   * @throws {@link DownstreamCredentialError} when there is none for this caller, for example
   * because their grant was revoked at the authorization server (`ERR_DOWNSTREAM_REFUSED`)
   */
  get(service: string): Promise<DownstreamCredential>
}

/** Per-caller downstream credentials, made by {@link createDownstreamCredentials}. */
export interface DownstreamCredentials {
  /** The configured service names. */
  readonly services: readonly string[]
  /**
   * The credentials of the verified caller of this tool call (`extra` is the SDK's second
   * callback argument). Throws when the request did not pass through callproof.
   */
  of(extra: { authInfo?: AuthInfo | undefined }): CallerCredentials
  /** Drops every reusable credential of the caller of `extra` (for example after a sign-out). */
  forget(extra: { authInfo?: AuthInfo | undefined }): Promise<void>
}

interface Cached {
  readonly token: string
  readonly subject: string
  readonly scopes: readonly string[]
  /** Milliseconds. */
  readonly expiresAt: number
  /** Until when it may be handed out again without a new exchange (milliseconds). */
  readonly reuseUntil: number
}

function invalid(message: string): never {
  throw new CallproofError('ERR_INVALID_OPTIONS', `downstream credentials: ${message}`)
}

/** A service's answer, one line and bounded: it ends up in tool results and logs. */
function oneLine(value: unknown, max = 200): string {
  const text = typeof value === 'string' ? value : String(value)
  const clean = text.replace(/[^\x20-\x7E]/g, '?')
  return clean.length > max ? `${clean.slice(0, max)}…` : clean
}

function validateServices(
  services: DownstreamCredentialsOptions['services'],
): Map<string, { resource: URL; scopes: string[] }> {
  if (typeof services !== 'object' || services === null) invalid('services must be an object')
  const out = new Map<string, { resource: URL; scopes: string[] }>()
  for (const [name, service] of Object.entries(services)) {
    let resource: URL
    try {
      resource = assertSecureUrl(service?.resource, `service ${name} resource`)
    } catch (error) {
      invalid((error as Error).message)
    }
    if (resource.hash !== '') invalid(`service ${name} resource must not have a fragment`)
    const scopes = service.scopes
    if (
      !Array.isArray(scopes) ||
      scopes.length === 0 ||
      scopes.some((s: unknown) => typeof s !== 'string' || !SCOPE_TOKEN.test(s))
    ) {
      invalid(`service ${name} needs scopes: at least one scope token (RFC 6749 §3.3)`)
    }
    out.set(name, { resource, scopes: [...scopes] })
  }
  if (out.size === 0) invalid('services must name at least one downstream service')
  return out
}

/** Whether `url` lies under `resource` (same origin, and the resource's path as a prefix). */
function isUnder(url: URL, resource: URL): boolean {
  if (url.origin !== resource.origin) return false
  const base = resource.pathname.endsWith('/') ? resource.pathname : `${resource.pathname}/`
  return url.pathname === resource.pathname || url.pathname.startsWith(base)
}

/** The `iss` of a (verified) JWT access token, or undefined for a token that is not a JWT. */
function issuerOf(token: string): string | undefined {
  try {
    const { iss } = decodeJwt(token)
    return typeof iss === 'string' ? iss : undefined
  } catch {
    return undefined
  }
}

/**
 * Who the caller is: the issuer that vouched for them, their subject and the client they called
 * through. The token was verified before the tool ran, so its `iss` is genuine; a token that is
 * not a JWT (introspected) is keyed by its own hash instead, so that nothing is shared between
 * two callers whose issuer cannot be read.
 */
async function callerKey(authInfo: AuthInfo, sub: string, clientId: string): Promise<string> {
  let iss = issuerOf(authInfo.token)
  if (iss === undefined) {
    const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(authInfo.token))
    iss = `token:${Buffer.from(digest).toString('base64url')}`
  }
  return JSON.stringify([iss, sub, clientId])
}

/**
 * Per-caller credentials for the downstream APIs the tools call: RFC 8693 token exchange at
 * `issuer`, authenticated as this MCP server, each credential DPoP-bound to this server's key and
 * obtained for the verified caller of the call. Options are checked here, not at the first call.
 *
 * @example
 * ```ts
 * const downstream = createDownstreamCredentials({
 *   issuer: 'https://as.example',
 *   clientId: 'drive-mcp',
 *   clientKey: privateKey,
 *   services: { mail: { resource: 'https://mail.example/', scopes: ['mail:send'] } },
 * })
 * tools.register('email_file', { inputSchema, policy: { scopes: ['drive:share'] } }, async (args, extra) => {
 *   const mail = await downstream.of(extra).get('mail')
 *   const sent = await mail.fetch('https://mail.example/messages', { method: 'POST', body })
 *   return { content: [{ type: 'text', text: `sent: ${sent.status}` }] }
 * })
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc8693 token exchange
 * @see https://www.rfc-editor.org/rfc/rfc9449 DPoP
 * @see https://www.rfc-editor.org/rfc/rfc7523#section-2.2 private_key_jwt
 */
export function createDownstreamCredentials(
  options: DownstreamCredentialsOptions,
): DownstreamCredentials {
  const issuer = assertSecureUrl(options.issuer, 'issuer')
  if (typeof options.clientId !== 'string' || options.clientId === '') {
    invalid('clientId is required')
  }
  const clientKey =
    options.clientKey instanceof CryptoKey ? { key: options.clientKey } : options.clientKey
  if (!(clientKey?.key instanceof CryptoKey) || clientKey.key.type !== 'private') {
    invalid('clientKey must be a private CryptoKey (private_key_jwt)')
  }
  if (
    options.dpopKey !== undefined &&
    (!(options.dpopKey.privateKey instanceof CryptoKey) ||
      !(options.dpopKey.publicKey instanceof CryptoKey))
  ) {
    invalid('dpopKey must be a CryptoKeyPair')
  }
  const services = validateServices(options.services)
  const cacheSize = options.cacheSize ?? 1000
  if (!Number.isSafeInteger(cacheSize) || cacheSize < 0) invalid('cacheSize must be an integer ≥ 0')
  const reuseSeconds = options.reuseSeconds ?? 0
  if (!Number.isFinite(reuseSeconds) || reuseSeconds < 0) {
    invalid('reuseSeconds must be a number of seconds ≥ 0')
  }
  const timeoutMs = options.timeoutMs ?? 5000
  const insecure = issuer.protocol === 'http:' ? { [oauth.allowInsecureRequests]: true } : {}
  const client: oauth.Client = { client_id: options.clientId }
  const clientAuth = oauth.PrivateKeyJwt(
    clientKey.kid !== undefined ? { key: clientKey.key, kid: clientKey.kid } : clientKey.key,
  )

  let dpopKey: Promise<CryptoKeyPair> | undefined =
    options.dpopKey !== undefined ? Promise.resolve(options.dpopKey) : undefined
  const keyPair = () => (dpopKey ??= oauth.generateKeyPair('ES256'))
  let dpopHandle: Promise<oauth.DPoPHandle> | undefined
  const dpop = () => (dpopHandle ??= keyPair().then((pair) => oauth.DPoP(client, pair)))

  let server: Promise<oauth.AuthorizationServer> | undefined
  const authorizationServer = () => {
    server ??= discoverIssuer(options.issuer, { timeoutMs }).then((metadata) => {
      const endpoint = metadata['token_endpoint']
      if (typeof endpoint !== 'string')
        throw new Error(`issuer ${issuer.href} has no token_endpoint`)
      assertSecureUrl(endpoint, 'token_endpoint')
      return { issuer: metadata.issuer, token_endpoint: endpoint }
    })
    // A failed discovery is retried by the next call rather than remembered.
    server.catch(() => (server = undefined))
    return server
  }

  const cache = new Map<string, Cached>()
  const inFlight = new Map<string, Promise<Cached>>()

  async function exchange(
    service: string,
    target: { resource: URL; scopes: string[] },
    authInfo: AuthInfo,
  ): Promise<Cached> {
    let as: oauth.AuthorizationServer
    try {
      as = await authorizationServer()
    } catch (cause) {
      throw new DownstreamCredentialError(
        'ERR_DOWNSTREAM_UNAVAILABLE',
        service,
        `no ${service} credential: the authorization server is unavailable (${oneLine((cause as Error).message)})`,
        { cause },
      )
    }
    // The caller's token goes only to the authorization server that issued it: a server that
    // trusts several issuers must not hand one issuer's tokens to another. (An opaque token's
    // issuer cannot be read here; it is sent to the configured issuer.)
    const tokenIssuer = issuerOf(authInfo.token)
    if (tokenIssuer !== undefined && tokenIssuer !== as.issuer) {
      throw new DownstreamCredentialError(
        'ERR_DOWNSTREAM_REFUSED',
        service,
        `no ${service} credential for this caller: their token is from ${oneLine(tokenIssuer)}, and ${service} is exchanged at ${as.issuer}`,
      )
    }
    const parameters = {
      subject_token: authInfo.token,
      subject_token_type: ACCESS_TOKEN_TYPE,
      requested_token_type: ACCESS_TOKEN_TYPE,
      resource: target.resource.href,
      scope: target.scopes.join(' '),
    }
    const handle = await dpop()
    const request = () =>
      oauth.genericTokenEndpointRequest(as, client, clientAuth, TOKEN_EXCHANGE, parameters, {
        DPoP: handle,
        signal: AbortSignal.timeout(timeoutMs),
        ...insecure,
      })
    let result: oauth.TokenEndpointResponse
    try {
      try {
        result = await oauth.processGenericTokenEndpointResponse(as, client, await request())
      } catch (error) {
        // RFC 9449 §8: the server asked for a nonce; the handle has it now.
        if (!oauth.isDPoPNonceError(error)) throw error
        result = await oauth.processGenericTokenEndpointResponse(as, client, await request())
      }
    } catch (cause) {
      if (cause instanceof oauth.ResponseBodyError) {
        throw new DownstreamCredentialError(
          'ERR_DOWNSTREAM_REFUSED',
          service,
          `no ${service} credential for this caller: the authorization server refused (${oneLine(cause.error)}${
            cause.error_description ? `: ${oneLine(cause.error_description)}` : ''
          })`,
          { cause },
        )
      }
      throw new DownstreamCredentialError(
        'ERR_DOWNSTREAM_UNAVAILABLE',
        service,
        `no ${service} credential: the token exchange failed (${oneLine((cause as Error).message)})`,
        { cause },
      )
    }
    // The point of exchanging is a token only this server can use: refuse a bearer token.
    if (result.token_type.toLowerCase() !== 'dpop') {
      throw new DownstreamCredentialError(
        'ERR_DOWNSTREAM_REFUSED',
        service,
        `no ${service} credential: the authorization server issued a ${oneLine(result.token_type)} token, not a DPoP-bound one`,
      )
    }
    const { sub } = callerOf({ authInfo })
    const lifetime = typeof result.expires_in === 'number' ? result.expires_in : 0
    // Never kept past the caller's own token: once that expires (or is refused), so does this.
    const callerExpiry = authInfo.expiresAt !== undefined ? authInfo.expiresAt * 1000 : Infinity
    const now = Date.now()
    const expiresAt = Math.min(now + (lifetime - EXPIRY_MARGIN) * 1000, callerExpiry)
    return {
      token: result.access_token,
      subject: sub,
      scopes: typeof result.scope === 'string' ? result.scope.split(' ') : target.scopes,
      expiresAt,
      reuseUntil: Math.min(now + reuseSeconds * 1000, expiresAt),
    }
  }

  function credential(
    service: string,
    target: { resource: URL },
    cached: Cached,
  ): DownstreamCredential {
    const headers = async (method: string, url: string | URL, nonce?: string) => {
      const parsed = typeof url === 'string' ? URL.parse(url) : url
      if (parsed === null || !isUnder(parsed, target.resource)) {
        throw new DownstreamCredentialError(
          'ERR_DOWNSTREAM_WRONG_TARGET',
          service,
          `the ${service} credential is only sent under ${target.resource.href}`,
        )
      }
      const proof = await createProof(await keyPair(), {
        htm: method.toUpperCase(),
        htu: `${parsed.origin}${parsed.pathname}`,
        accessToken: cached.token,
        ...(nonce !== undefined ? { nonce } : {}),
      })
      return { authorization: `DPoP ${cached.token}`, dpop: proof }
    }
    return Object.freeze({
      service,
      resource: target.resource.href,
      subject: cached.subject,
      scopes: Object.freeze([...cached.scopes]),
      expiresAt: cached.expiresAt,
      headers: (method: string, url: string | URL) => headers(method, url),
      async fetch(url: string | URL, init: RequestInit = {}) {
        const method = init.method ?? 'GET'
        const send = async (nonce?: string) => {
          const sent = new Headers(init.headers)
          for (const [name, value] of Object.entries(await headers(method, url, nonce))) {
            sent.set(name, value)
          }
          // No redirects: the token and its proof are for this URL only.
          return fetch(url, { ...init, method, headers: sent, redirect: 'manual' })
        }
        const response = await send()
        const nonce = response.headers.get('dpop-nonce')
        const replayable = init.body === undefined || typeof init.body === 'string'
        if (
          response.status === 401 &&
          nonce !== null &&
          replayable &&
          /use_dpop_nonce/.test(response.headers.get('www-authenticate') ?? '')
        ) {
          await response.body?.cancel()
          return send(nonce)
        }
        return response
      },
    })
  }

  function remember(key: string, value: Cached): void {
    if (cacheSize === 0 || value.reuseUntil <= Date.now()) return
    cache.delete(key)
    cache.set(key, value)
    while (cache.size > cacheSize) {
      const oldest = cache.keys().next().value
      if (oldest === undefined) break
      cache.delete(oldest)
    }
  }

  return Object.freeze({
    services: Object.freeze([...services.keys()]),
    of(extra: { authInfo?: AuthInfo | undefined }): CallerCredentials {
      // Throws for an unverified request: no credential is ever handed out without a caller.
      const caller = callerOf(extra)
      const authInfo = extra.authInfo!
      return Object.freeze({
        async get(service: string): Promise<DownstreamCredential> {
          try {
            const { credential: found, reason } = await lookup(service)
            await record(service, 'allowed', reason)
            return found
          } catch (error) {
            if (error instanceof DownstreamCredentialError) {
              await record(error.service, 'refused', error.code).catch(() => undefined)
            }
            throw error
          }
        },
      })

      async function record(
        service: string,
        decision: 'allowed' | 'refused',
        reason: string,
      ): Promise<void> {
        if (options.audit === undefined) return
        await options.audit.write({
          time: new Date().toISOString(),
          requestId: crypto.randomUUID(),
          decision,
          reason,
          httpMethod: 'POST',
          method: 'downstream/credential',
          downstream: service,
          sub: caller.sub,
          clientId: caller.clientId,
          jkt: caller.jkt,
          tokenId: caller.tokenId,
        })
      }

      async function lookup(
        service: string,
      ): Promise<{ credential: DownstreamCredential; reason: 'cached' | 'exchanged' }> {
        const target = services.get(service)
        if (target === undefined || !Object.hasOwn(options.services, service)) {
          throw new DownstreamCredentialError(
            'ERR_DOWNSTREAM_UNKNOWN_SERVICE',
            oneLine(service, 64),
            `no downstream service ${oneLine(service, 64)} is configured (known: ${[...services.keys()].join(', ')})`,
          )
        }
        const who = await callerKey(authInfo, caller.sub, caller.clientId)
        // Reused only for this caller's key and this very token: a new token (a refresh, a new
        // sign-in) is a new exchange, where the authorization server checks the grant again.
        const key = JSON.stringify([who, caller.jkt, caller.tokenId, service])
        const hit = cache.get(key)
        if (hit !== undefined && hit.reuseUntil > Date.now()) {
          return { credential: credential(service, target, hit), reason: 'cached' }
        }
        if (hit !== undefined) cache.delete(key)
        let pending = inFlight.get(key)
        if (pending === undefined) {
          pending = exchange(service, target, authInfo).finally(() => inFlight.delete(key))
          inFlight.set(key, pending)
        }
        const fresh = await pending
        remember(key, fresh)
        return { credential: credential(service, target, fresh), reason: 'exchanged' }
      }
    },
    async forget(extra: { authInfo?: AuthInfo | undefined }): Promise<void> {
      const caller = callerOf(extra)
      const who = await callerKey(extra.authInfo!, caller.sub, caller.clientId)
      for (const key of [...cache.keys()]) {
        if ((JSON.parse(key) as [string, string])[0] === who) cache.delete(key)
      }
    },
  })
}
