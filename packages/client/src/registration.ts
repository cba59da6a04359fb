/**
 * Client registration in the MCP specification's priority: a pre-registered client, else a client
 * ID metadata document (the client id is an https URL the authorization server fetches), else
 * dynamic client registration (RFC 7591) through oauth4webapi.
 *
 * @module
 */

import * as oauth from 'oauth4webapi'
import { CallproofClientError } from './errors.js'
import { isLoopbackHost } from '@callproof/core'
import { responseLimitErrorIn } from './guards.js'
import type { StoredClient, TokenStore } from './stores.js'

/**
 * How the client identifies itself to authorization servers.
 *
 * @example
 * ```ts
 * const registration: RegistrationOptions = { clientMetadataUrl: 'https://app.example/client.json' }
 * ```
 */
export interface RegistrationOptions {
  /** A pre-registered client id (first choice when given). */
  clientId?: string
  /** The pre-registered client's secret (confidential client). */
  clientSecret?: string
  /** The pre-registered client's token endpoint authentication method. */
  tokenEndpointAuthMethod?: 'none' | 'client_secret_basic' | 'client_secret_post'
  /** An https URL of this client's metadata document, used as client id where supported. */
  clientMetadataUrl?: string
  /** Metadata sent with dynamic registration (`client_name`, `logo_uri`, …). */
  clientMetadata?: Record<string, oauth.JsonValue>
}

function chooseAuthMethod(as: oauth.AuthorizationServer): StoredClient['tokenEndpointAuthMethod'] {
  const supported = as.token_endpoint_auth_methods_supported
  if (!Array.isArray(supported) || supported.includes('none')) return 'none'
  if (supported.includes('client_secret_basic')) return 'client_secret_basic'
  if (supported.includes('client_secret_post')) return 'client_secret_post'
  return 'none'
}

/**
 * The OpenID Connect registration `application_type` (MCP 2026-07-28, SEP-837) for a redirect URI:
 * `native` for a loopback redirect (RFC 8252 §7.3) or a private-use scheme (§7.1), `web` for an
 * https redirect to a host. Sent always: a server that receives none assumes `web`, and may then
 * refuse the loopback redirect of a command-line or desktop client.
 */
export function applicationTypeOf(redirectUri: string): 'native' | 'web' {
  const url = new URL(redirectUri)
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'native'
  return isLoopbackHost(url.hostname) ? 'native' : 'web'
}

/**
 * Resolves the client to use with `as`: pre-registered, metadata document, remembered dynamic
 * registration (same redirect URI), or a new dynamic registration.
 *
 * @throws {@link CallproofClientError} `ERR_REGISTRATION_FAILED`
 * @example
 * ```ts
 * const client = await resolveClient(as, redirectUri, { clientMetadataUrl }, store, http)
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc7591#section-3
 */
export async function resolveClient(
  as: oauth.AuthorizationServer,
  redirectUri: string | undefined,
  options: RegistrationOptions,
  store: TokenStore,
  http: oauth.HttpRequestOptions<'POST', string>,
): Promise<StoredClient> {
  if (options.clientId !== undefined) {
    return {
      clientId: options.clientId,
      ...(options.clientSecret !== undefined && { clientSecret: options.clientSecret }),
      tokenEndpointAuthMethod:
        options.tokenEndpointAuthMethod ??
        (options.clientSecret !== undefined ? 'client_secret_basic' : 'none'),
    }
  }
  if (
    options.clientMetadataUrl !== undefined &&
    as.client_id_metadata_document_supported === true
  ) {
    return { clientId: options.clientMetadataUrl, tokenEndpointAuthMethod: 'none' }
  }
  const remembered = await store.getClient(as.issuer)
  if (remembered && remembered.redirectUri === redirectUri) return remembered
  if (typeof as.registration_endpoint !== 'string') {
    throw new CallproofClientError(
      'ERR_REGISTRATION_FAILED',
      `${as.issuer} offers no client ID metadata documents and no registration endpoint; configure a pre-registered clientId`,
    )
  }
  const method = chooseAuthMethod(as)
  const metadata: Record<string, oauth.JsonValue> = {
    client_name: 'callproof client',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: method ?? 'none',
    ...(redirectUri !== undefined && { redirect_uris: [redirectUri] }),
    ...(redirectUri !== undefined && { application_type: applicationTypeOf(redirectUri) }),
    ...options.clientMetadata,
  }
  let registered: Awaited<ReturnType<typeof oauth.processDynamicClientRegistrationResponse>>
  try {
    const response = await oauth.dynamicClientRegistrationRequest(as, metadata, http)
    const copy = response.clone()
    try {
      registered = await oauth.processDynamicClientRegistrationResponse(response)
    } catch (err) {
      // RFC 7591 §3.2.1 makes client_secret_expires_at REQUIRED with a secret, and oauth4webapi
      // insists; several deployed servers omit it. Its absence changes nothing for us (we never
      // rotate secrets), so that one omission is tolerated and everything else stays strict.
      if (
        !(err instanceof oauth.OperationProcessingError) ||
        !err.message.includes('client_secret_expires_at')
      ) {
        throw err
      }
      const body = (await copy.json()) as Record<string, oauth.JsonValue>
      if (body.client_secret_expires_at !== undefined || typeof body.client_id !== 'string')
        throw err
      registered = body as typeof registered
    }
  } catch (err) {
    if (err instanceof CallproofClientError) throw err
    throw (
      responseLimitErrorIn(err) ??
      new CallproofClientError(
        'ERR_REGISTRATION_FAILED',
        `dynamic registration at ${as.issuer} failed: ${(err as Error).message}`,
        { cause: err },
      )
    )
  }
  const secret = registered.client_secret
  const client: StoredClient = {
    clientId: registered.client_id,
    ...(typeof secret === 'string' && { clientSecret: secret }),
    tokenEndpointAuthMethod:
      typeof registered.token_endpoint_auth_method === 'string'
        ? registered.token_endpoint_auth_method
        : typeof secret === 'string'
          ? 'client_secret_basic'
          : 'none',
    ...(redirectUri !== undefined && { redirectUri }),
  }
  await store.setClient(as.issuer, client)
  return client
}

function formEncode(value: string): string {
  return new URLSearchParams([['', value]]).toString().slice(1)
}

/**
 * `client_secret_basic` (RFC 6749 §2.3.1) with the WHATWG form encoding of id and secret.
 * oauth4webapi's `ClientSecretBasic` also escapes `-_.!~*'()`; that is valid, but servers that
 * compare the Basic credentials without form-decoding them (as deployed ones do) then reject a
 * client id such as `pre-registered-client`. Both encodings decode to the same values.
 *
 * @example
 * ```ts
 * const auth = clientSecretBasic('s3cret')
 * ```
 */
export function clientSecretBasic(clientSecret: string): oauth.ClientAuth {
  return (_as, client, _body, headers) => {
    const credentials = `${formEncode(client.client_id)}:${formEncode(clientSecret)}`
    headers.set('authorization', `Basic ${btoa(credentials)}`)
  }
}

/**
 * The oauth4webapi client authentication for a resolved client.
 *
 * @example
 * ```ts
 * const auth = clientAuthentication({ clientId: 'x', tokenEndpointAuthMethod: 'none' })
 * ```
 */
export function clientAuthentication(client: StoredClient): oauth.ClientAuth {
  switch (client.tokenEndpointAuthMethod ?? 'none') {
    case 'none':
      return oauth.None()
    case 'client_secret_basic':
    case 'client_secret_post': {
      if (client.clientSecret === undefined) {
        throw new CallproofClientError(
          'ERR_REGISTRATION_FAILED',
          `client ${client.clientId} uses ${client.tokenEndpointAuthMethod} but has no secret`,
        )
      }
      return client.tokenEndpointAuthMethod === 'client_secret_post'
        ? oauth.ClientSecretPost(client.clientSecret)
        : clientSecretBasic(client.clientSecret)
    }
    default:
      throw new CallproofClientError(
        'ERR_REGISTRATION_FAILED',
        `token endpoint authentication ${client.tokenEndpointAuthMethod} is not supported`,
      )
  }
}
