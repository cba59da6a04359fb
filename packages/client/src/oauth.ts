/**
 * OAuth 2.1 with oauth4webapi: authorization code + PKCE S256 with `resource` (RFC 8707) on both
 * requests, `state`, RFC 9207 `iss`, and DPoP (RFC 9449) on every token request with the same key
 * pair the client signs its MCP proofs with, so the token is bound to that key (`cnf.jkt`).
 *
 * @module
 */

import { importPKCS8 } from 'jose'
import * as oauth from 'oauth4webapi'
import { assertAuthorizationResponseIssuer } from './authorization-response.js'
import { CallproofClientError } from './errors.js'
import { assertSafeUrl, guardedFetch, responseLimitErrorIn, type UrlPolicy } from './guards.js'
import type { Interaction, InteractionContext } from './interaction.js'
import type { TokenSet } from './stores.js'

/**
 * Everything a token request needs, resolved once per authorization server.
 *
 * @example
 * ```ts
 * const ctx = oauthContext(as, { client_id: 'abc' }, oauth.None(), keyPair, {})
 * ```
 */
export interface OAuthContext {
  /** Authorization server metadata (checked by discovery). */
  as: oauth.AuthorizationServer
  /** The oauth4webapi client. */
  client: oauth.Client
  /** How the client authenticates at the token endpoint. */
  clientAuth: oauth.ClientAuth
  /** The DPoP handle over the client's proof key pair (tracks the authorization server's nonce). */
  dpop: oauth.DPoPHandle
  /** What server-supplied URLs may point at. */
  urlPolicy: UrlPolicy
  /** The underlying fetch. */
  fetch?: typeof fetch
  /** Refuse Bearer (unbound) tokens; default true. */
  requireBoundTokens?: boolean
}

/**
 * Builds an {@link OAuthContext}; the DPoP handle uses `keyPair`, the same key as the MCP proofs.
 *
 * @example
 * ```ts
 * const ctx = oauthContext(as, { client_id }, oauth.None(), keyPair, { allowLoopbackHttp: true })
 * ```
 */
export function oauthContext(
  as: oauth.AuthorizationServer,
  client: oauth.Client,
  clientAuth: oauth.ClientAuth,
  keyPair: CryptoKeyPair,
  urlPolicy: UrlPolicy,
  options: { fetch?: typeof fetch; requireBoundTokens?: boolean } = {},
): OAuthContext {
  return {
    as,
    client,
    clientAuth,
    dpop: oauth.DPoP(client, keyPair),
    urlPolicy,
    ...(options.fetch && { fetch: options.fetch }),
    ...(options.requireBoundTokens !== undefined && {
      requireBoundTokens: options.requireBoundTokens,
    }),
  }
}

/**
 * oauth4webapi request options: every request goes through the SSRF guard; http is allowed only
 * where the guard allows it (loopback, development).
 */
export function httpOptions(
  urlPolicy: UrlPolicy,
  baseFetch?: typeof fetch,
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- one options object serves GET and POST requests of every body type
): oauth.HttpRequestOptions<any, any> {
  const safe = guardedFetch(urlPolicy, baseFetch)
  return {
    [oauth.customFetch]: (url: string, init: oauth.CustomFetchOptions<string, unknown>) =>
      safe(url, init as RequestInit),
    // The guard refuses any http URL that is not loopback-in-development, so this only lifts
    // oauth4webapi's own https check where the guard already decided.
    ...(urlPolicy.allowLoopbackHttp === true && { [oauth.allowInsecureRequests]: true }),
  }
}

/**
 * What an authorization asks for.
 *
 * @example
 * ```ts
 * const request: AuthorizationRequest = { resource, scopes: ['drive:read'], reason: 'authorize' }
 * ```
 */
export interface AuthorizationRequest {
  /** The resource (RFC 8707) the token is for. */
  resource: string
  /** Scopes to request (omitted when empty). */
  scopes?: readonly string[]
  /** RFC 9470 `acr_values`. */
  acrValues?: readonly string[]
  /** RFC 9470 `max_age` in seconds. */
  maxAge?: number
  /** RFC 9396 `authorization_details`. */
  authorizationDetails?: unknown[]
  /** Why (shown by the interaction). */
  reason: InteractionContext['reason']
}

/** @internal Sends a token request, retrying once with the authorization server's DPoP nonce. */
export async function withNonceRetry(
  send: () => Promise<Response>,
  process: (response: Response) => Promise<oauth.TokenEndpointResponse>,
): Promise<oauth.TokenEndpointResponse> {
  try {
    return await process(await send())
  } catch (err) {
    // RFC 9449 §8: the authorization server may demand a nonce; the DPoP handle has stored it
    // from the error response, so exactly one retry carries it.
    if (oauth.isDPoPNonceError(err)) return process(await send())
    throw err
  }
}

/** @internal The token set of a token response; refuses a Bearer token unless allowed. */
export function toTokenSet(
  ctx: OAuthContext,
  result: oauth.TokenEndpointResponse,
  resource: string,
  requestedScopes: readonly string[] | undefined,
  previousRefresh?: string,
): TokenSet {
  const tokenType = result.token_type.toLowerCase()
  if (tokenType !== 'dpop' && ctx.requireBoundTokens !== false) {
    throw new CallproofClientError(
      'ERR_TOKEN_NOT_BOUND',
      `${ctx.as.issuer} issued a ${result.token_type} token; a DPoP-bound token is required`,
    )
  }
  const refresh = result.refresh_token ?? previousRefresh
  return {
    accessToken: result.access_token,
    tokenType,
    ...(refresh !== undefined && { refreshToken: refresh }),
    ...(typeof result.expires_in === 'number' && {
      expiresAt: Date.now() + result.expires_in * 1000,
    }),
    scopes:
      typeof result.scope === 'string'
        ? result.scope.split(' ').filter(Boolean)
        : [...(requestedScopes ?? [])],
    issuer: ctx.as.issuer,
    resource,
  }
}

/** @internal A token request's failure as a {@link CallproofClientError}. */
export function tokenError(err: unknown, what: string): CallproofClientError {
  if (err instanceof CallproofClientError) return err
  const limit = responseLimitErrorIn(err)
  if (limit !== undefined) return limit
  const detail =
    err instanceof oauth.ResponseBodyError
      ? `${err.error}${err.error_description ? `: ${err.error_description}` : ''}`
      : (err as Error).message
  return new CallproofClientError('ERR_TOKEN_REQUEST_FAILED', `${what} failed: ${detail}`, {
    cause: err,
  })
}

/**
 * Runs one authorization code flow: PKCE S256, `state`, `resource`, `dpop_jkt`, optional scopes,
 * `acr_values`, `max_age` and `authorization_details`; the interaction brings back the redirect;
 * oauth4webapi checks `state` and `iss`; the code is exchanged with a DPoP proof.
 *
 * @throws {@link CallproofClientError} `ERR_PKCE_NOT_SUPPORTED`, `ERR_UNSAFE_URL`,
 * `ERR_AUTHORIZATION_FAILED`, `ERR_TOKEN_REQUEST_FAILED`, `ERR_TOKEN_NOT_BOUND`
 * @example
 * ```ts
 * const tokens = await authorizationCodeFlow(ctx, interaction, redirectUri, { resource, reason: 'authorize' })
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-10
 * @see https://www.rfc-editor.org/rfc/rfc9207#section-2.4
 */
export async function authorizationCodeFlow(
  ctx: OAuthContext,
  interaction: Interaction,
  redirectUri: string,
  request: AuthorizationRequest,
): Promise<TokenSet> {
  const { as, client } = ctx
  const methods = as.code_challenge_methods_supported
  if (!Array.isArray(methods) || !methods.includes('S256')) {
    // Without S256 advertised there is no assurance the code is bound to this client's verifier
    // (OAuth 2.1 §7.5.2); the MCP specification requires refusing such servers.
    throw new CallproofClientError(
      'ERR_PKCE_NOT_SUPPORTED',
      `${as.issuer} does not advertise PKCE S256 in code_challenge_methods_supported`,
    )
  }
  if (typeof as.authorization_endpoint !== 'string') {
    throw new CallproofClientError(
      'ERR_INVALID_METADATA',
      `${as.issuer} has no authorization_endpoint`,
    )
  }
  const endpoint = await assertSafeUrl(as.authorization_endpoint, ctx.urlPolicy)
  const verifier = oauth.generateRandomCodeVerifier()
  const state = oauth.generateRandomState()
  const url = new URL(endpoint)
  const params = url.searchParams
  params.set('response_type', 'code')
  params.set('client_id', client.client_id)
  params.set('redirect_uri', redirectUri)
  params.set('code_challenge', await oauth.calculatePKCECodeChallenge(verifier))
  params.set('code_challenge_method', 'S256')
  params.set('state', state)
  params.set('resource', request.resource)
  // RFC 9449 §10: binds the authorization code to our key, so a stolen code is useless to a
  // client holding another key.
  params.set('dpop_jkt', await ctx.dpop.calculateThumbprint())
  if (request.scopes && request.scopes.length > 0) params.set('scope', request.scopes.join(' '))
  if (request.acrValues && request.acrValues.length > 0) {
    params.set('acr_values', request.acrValues.join(' '))
  }
  if (request.maxAge !== undefined) params.set('max_age', String(request.maxAge))
  if (request.authorizationDetails) {
    params.set('authorization_details', JSON.stringify(request.authorizationDetails))
  }
  let callback: URL
  try {
    callback = await interaction.authorize(url, {
      reason: request.reason,
      development: ctx.urlPolicy.allowLoopbackHttp === true,
      ...(request.authorizationDetails && { authorizationDetails: request.authorizationDetails }),
    })
  } catch (err) {
    if (err instanceof CallproofClientError) throw err
    throw new CallproofClientError('ERR_INTERACTION_FAILED', (err as Error).message, { cause: err })
  }
  // RFC 9207 first: after a mix-up nothing else of the response may be read or shown.
  assertAuthorizationResponseIssuer(as, callback)
  let callbackParams: URLSearchParams
  try {
    callbackParams = oauth.validateAuthResponse(as, client, callback, state)
  } catch (err) {
    const detail =
      err instanceof oauth.AuthorizationResponseError
        ? `${err.error}${err.error_description ? `: ${err.error_description}` : ''}`
        : (err as Error).message
    throw new CallproofClientError(
      'ERR_AUTHORIZATION_FAILED',
      `authorization at ${as.issuer} failed: ${detail}`,
      { cause: err },
    )
  }
  const http = httpOptions(ctx.urlPolicy, ctx.fetch)
  try {
    const result = await withNonceRetry(
      () =>
        oauth.authorizationCodeGrantRequest(
          as,
          client,
          ctx.clientAuth,
          callbackParams,
          redirectUri,
          verifier,
          { ...http, DPoP: ctx.dpop, additionalParameters: { resource: request.resource } },
        ),
      (response) => oauth.processAuthorizationCodeResponse(as, client, response),
    )
    return toTokenSet(ctx, result, request.resource, request.scopes)
  } catch (err) {
    throw tokenError(err, `token request at ${as.issuer}`)
  }
}

/**
 * Refreshes with DPoP (the refresh token of a public client is bound to the same key) and keeps
 * the rotated refresh token when the server issues one.
 *
 * @throws {@link CallproofClientError} `ERR_TOKEN_REQUEST_FAILED`
 * @example
 * ```ts
 * tokens = await refreshTokens(ctx, tokens)
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-5.0
 */
export async function refreshTokens(ctx: OAuthContext, tokens: TokenSet): Promise<TokenSet> {
  if (tokens.refreshToken === undefined) {
    throw new CallproofClientError('ERR_TOKEN_REQUEST_FAILED', 'no refresh token to refresh with')
  }
  const refreshToken = tokens.refreshToken
  const http = httpOptions(ctx.urlPolicy, ctx.fetch)
  try {
    const result = await withNonceRetry(
      () =>
        oauth.refreshTokenGrantRequest(ctx.as, ctx.client, ctx.clientAuth, refreshToken, {
          ...http,
          DPoP: ctx.dpop,
          additionalParameters: { resource: tokens.resource },
        }),
      (response) => oauth.processRefreshTokenResponse(ctx.as, ctx.client, response),
    )
    return toTokenSet(ctx, result, tokens.resource, tokens.scopes, refreshToken)
  } catch (err) {
    throw tokenError(err, `refresh at ${ctx.as.issuer}`)
  }
}

/**
 * The client credentials grant for agents without a user, with DPoP and `resource`. Use
 * {@link privateKeyJwtAuthentication} for `private_key_jwt`.
 *
 * @throws {@link CallproofClientError} `ERR_TOKEN_REQUEST_FAILED`
 * @example
 * ```ts
 * const tokens = await clientCredentialsFlow(ctx, { resource, scopes: ['drive:read'] })
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.4
 */
export async function clientCredentialsFlow(
  ctx: OAuthContext,
  request: { resource: string; scopes?: readonly string[] },
): Promise<TokenSet> {
  const http = httpOptions(ctx.urlPolicy, ctx.fetch)
  const parameters: Record<string, string> = { resource: request.resource }
  if (request.scopes && request.scopes.length > 0) parameters.scope = request.scopes.join(' ')
  try {
    const result = await withNonceRetry(
      () =>
        oauth.clientCredentialsGrantRequest(ctx.as, ctx.client, ctx.clientAuth, parameters, {
          ...http,
          DPoP: ctx.dpop,
        }),
      (response) => oauth.processClientCredentialsResponse(ctx.as, ctx.client, response),
    )
    return toTokenSet(ctx, result, request.resource, request.scopes)
  } catch (err) {
    throw tokenError(err, `client credentials grant at ${ctx.as.issuer}`)
  }
}

/**
 * `private_key_jwt` client authentication (RFC 7523) from a private key (a `CryptoKey`, or a
 * PKCS #8 PEM imported for `alg`).
 *
 * @example
 * ```ts
 * const auth = await privateKeyJwtAuthentication(pem, 'ES256')
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc7523#section-2.2
 */
export async function privateKeyJwtAuthentication(
  key: CryptoKey | string,
  alg = 'ES256',
  kid?: string,
): Promise<oauth.ClientAuth> {
  let privateKey: CryptoKey
  if (typeof key === 'string') {
    privateKey = (await importPKCS8(key, alg, { extractable: false })) as CryptoKey
  } else {
    privateKey = key
  }
  return oauth.PrivateKeyJwt(kid !== undefined ? { key: privateKey, kid } : privateKey)
}
