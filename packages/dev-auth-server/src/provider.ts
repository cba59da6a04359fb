import Provider, { errors, interactionPolicy } from 'oidc-provider'
import type { KoaContextWithOIDC, OidcClient, OidcToken, UnknownObject } from 'oidc-provider'
import canonicalize from 'canonicalize'
import type { JWK } from 'jose'
import {
  AuthorizationDetailsError,
  MCP_TOOL_CALL,
  forToken,
  hasToolCall,
  validateMcpToolCall,
} from './authorization-details.js'
import { ACR_VALUES, acrSatisfies, findUser, requiredAcr } from './users.js'
import { exchangedClaims, registerTokenExchange } from './token-exchange.js'
import { registerJwtBearer } from './jwt-bearer.js'
import type { ClientMetadata, DevResource, JwtBearerTrust, TokenExchangeRule } from './types.js'

/** @internal the provider options that {@link createDevAuthServer} resolves. */
export interface ProviderOptions {
  issuer: string
  resources: readonly DevResource[]
  clients: readonly ClientMetadata[]
  signingKey: JWK
  cookieKeys: string[]
  accessTokenTtl: number
  approvalTtl: number
  tokenExchange: readonly TokenExchangeRule[]
  /** Issuers whose assertions the JWT-bearer grant accepts. */
  jwtBearer: readonly JwtBearerTrust[]
  renderError: (ctx: KoaContextWithOIDC, out: Record<string, string>) => void
  /** Renders the sign-out question (around oidc-provider's form) and the signed-out page. */
  renderLogout: (ctx: KoaContextWithOIDC, form: string | undefined) => void
}

const DETAIL_SCOPES = ['openid', 'offline_access']

// oidc-provider only accepts acr_values and max_age together with the openid scope (they come
// from OpenID Connect). RFC 9470 step-up uses them in plain OAuth requests, which is what MCP
// clients send. For such requests they are carried under these names and enforced by the two
// checks below, exactly like oidc-provider's own max_age check.
const OAUTH_ACR_VALUES = 'callproof_acr_values'
const OAUTH_MAX_AGE = 'callproof_max_age'

function acrValuesOf(ctx: KoaContextWithOIDC): unknown {
  return ctx.oidc.params.acr_values ?? ctx.oidc.params[OAUTH_ACR_VALUES]
}

function maxAgeOf(ctx: KoaContextWithOIDC): number | undefined {
  const raw = ctx.oidc.params[OAUTH_MAX_AGE]
  if (raw === undefined) return undefined
  if (typeof raw !== 'string' || !/^\d{1,10}$/.test(raw)) {
    throw new errors.InvalidRequest('max_age must be a non-negative integer number of seconds')
  }
  return Number(raw)
}

interface KoaLike {
  path: string
  method: string
  querystring: string
}

/**
 * Every token is DPoP-bound, so a client that cannot do DPoP would sign in and consent, only to
 * be refused at the token request. Requiring `dpop_jkt` (RFC 9449 §10) on the authorization
 * request tells it at once, before the login page (the error goes back to its redirect URI). A
 * pushed request with a DPoP proof has it already (oidc-provider copies the proof's thumbprint).
 * Only public clients are held to it (see below).
 */
async function requireDpopJkt(
  ctx: KoaContextWithOIDC,
  value: unknown,
  client?: { tokenEndpointAuthMethod?: string },
): Promise<void> {
  const route = ctx.oidc.route
  if (route !== 'authorization' && route !== 'pushed_authorization_request') return
  // Asked of public clients, the MCP clients this is for. A confidential client authenticates at
  // the token request and may complete the flow on another instance with another key (a server
  // obtaining a third-party grant does), so it may leave the key unnamed here.
  if (client !== undefined && client.tokenEndpointAuthMethod !== 'none') return
  if (typeof value === 'string' && value !== '') return
  throw new errors.InvalidRequest(
    'dpop_jkt is required: this server issues only DPoP-bound tokens (RFC 9449), so send dpop_jkt, the thumbprint of the key that will sign the DPoP proof of the token request (RFC 9449 section 10); an MCP client without DPoP can reach a callproof server through `callproof bridge`',
  )
}

/**
 * An authorization request without `scope` (the conformance suite's, for one) would reach an
 * empty consent page and end in `access_denied`: it gets the scopes of the resource it names.
 */
function defaultScopes(scopesOf: (resource: string) => readonly string[] | undefined) {
  return (ctx: KoaLike, next: () => Promise<void>): Promise<void> => {
    if (ctx.method === 'GET' && ctx.path === '/auth') {
      const query = new URLSearchParams(ctx.querystring)
      const resources = query.getAll('resource')
      const scopes = resources.length === 1 ? scopesOf(resources[0]!) : undefined
      if ((query.get('scope') ?? '').trim() === '' && scopes !== undefined && scopes.length > 0) {
        query.set('scope', scopes.join(' '))
        ctx.querystring = query.toString()
      }
    }
    return next()
  }
}

/** Moves acr_values / max_age of a non-OpenID authorization request to the names above. */
function oauthStepUpParams(ctx: KoaLike, next: () => Promise<void>): Promise<void> {
  if (ctx.method === 'GET' && ctx.path === '/auth') {
    const query = new URLSearchParams(ctx.querystring)
    const scopes = (query.get('scope') ?? '').split(' ')
    if (!scopes.includes('openid')) {
      for (const [from, to] of [
        ['acr_values', OAUTH_ACR_VALUES],
        ['max_age', OAUTH_MAX_AGE],
      ] as const) {
        const values = query.getAll(from)
        query.delete(from)
        for (const value of values) query.append(to, value)
      }
      ctx.querystring = query.toString()
    }
  }
  return next()
}

function sourceOf(ctx: KoaContextWithOIDC | undefined): OidcToken | undefined {
  return ctx?.oidc.entities.AuthorizationCode ?? ctx?.oidc.entities.RefreshToken
}

function sameDetail(a: unknown, b: unknown): boolean {
  return canonicalize(a) === canonicalize(b)
}

function parseRequestedDetails(ctx: KoaContextWithOIDC): unknown[] {
  const raw = ctx.oidc.params.authorization_details
  if (typeof raw !== 'string' || raw === '') return []
  const parsed: unknown = JSON.parse(raw)
  return Array.isArray(parsed) ? parsed : []
}

/**
 * Builds the oidc-provider instance: every knob that makes it an MCP authorization server is set
 * here and nowhere else.
 *
 * @internal
 */
export function createProvider(options: ProviderOptions): Provider {
  const resourceUris = options.resources.map((r) => r.uri)

  const policy = interactionPolicy.base()
  const login = policy.get('login')
  if (!login) throw new Error('oidc-provider has no login prompt')
  // acr_values is voluntary in OpenID Connect; for step-up (RFC 9470) it must be honoured, so a
  // session that is weaker than the weakest requested level re-opens the login prompt.
  login.checks.push(
    new interactionPolicy.Check(
      'acr_values_not_met',
      'the requested authentication level (acr_values) is not met by the current session',
      (ctx) => {
        const wanted = requiredAcr(acrValuesOf(ctx))
        if (wanted === undefined) return false
        const acr = ctx.oidc.result?.login?.acr ?? ctx.oidc.session.acr
        return !acrSatisfies(acr, wanted)
      },
      (ctx) => ({ acr_values: acrValuesOf(ctx) ?? '' }),
    ),
    // The same rule as oidc-provider's own max_age check, for OAuth (non-OpenID) requests.
    new interactionPolicy.Check(
      'oauth_max_age',
      'the last sign-in is older than the requested max_age',
      (ctx) => {
        const maxAge = maxAgeOf(ctx)
        if (maxAge === undefined) return false
        if (!ctx.oidc.session.accountId) return true
        return ctx.oidc.session.past(maxAge) && !ctx.oidc.result?.login
      },
      (ctx) => ({ max_age: maxAgeOf(ctx) ?? 0 }),
    ),
  )

  const configuration: UnknownObject = {
    clients: options.clients.map((c) => ({ ...c })),
    jwks: { keys: [options.signingKey] },
    cookies: { keys: options.cookieKeys },
    acrValues: [...ACR_VALUES],
    // The resources' scopes too: the SDKs send `scope` in dynamic client registration, which
    // oidc-provider accepts only with values it lists here.
    scopes: [...new Set([...DETAIL_SCOPES, ...options.resources.flatMap((r) => r.scopes)])],
    claims: { openid: ['sub'], profile: ['name'] },
    responseTypes: ['code'],
    extraParams: {
      [OAUTH_ACR_VALUES]: undefined,
      [OAUTH_MAX_AGE]: undefined,
      dpop_jkt: requireDpopJkt,
    },
    // OAuth 2.1: the redirect URI is always sent and compared exactly.
    allowOmittingSingleRegisteredRedirectUri: false,
    clientDefaults: {
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      id_token_signed_response_alg: 'ES256',
      // Clients may ask for per-call approvals unless they register a narrower list.
      authorization_details_types: [MCP_TOOL_CALL],
    },
    enabledJWA: {
      dPoPSigningAlgValues: ['ES256', 'EdDSA', 'Ed25519'],
      idTokenSigningAlgValues: ['ES256'],
    },
    pkce: {
      // Every client, confidential or not: PKCE stops code injection (OAuth 2.1 §7.5.1).
      // oidc-provider 9 only implements S256, so `plain` is refused.
      required: () => true,
    },
    extraClientMetadata: {
      properties: ['dpop_bound_access_tokens'],
      // Every client gets DPoP-bound tokens, whatever it registered: a bearer token is exactly
      // what callproof exists to avoid. (oidc-provider fills in `false` before this runs, so an
      // explicit `false` cannot be told from an absent value; both become `true`.)
      validator(_ctx: unknown, key: string, _value: unknown, metadata: UnknownObject) {
        if (key === 'dpop_bound_access_tokens') metadata[key] = true
      },
    },
    async findAccount(_ctx: unknown, sub: string) {
      const user = findUser(sub)
      if (!user) return undefined
      return {
        accountId: user.id,
        async claims() {
          return { sub: user.id, name: user.name }
        },
      }
    },
    async extraTokenClaims(ctx: KoaContextWithOIDC | undefined, token: OidcToken) {
      if (token.kind !== 'AccessToken') return undefined
      const exchanged = exchangedClaims(token)
      if (exchanged !== undefined) return exchanged
      // The code (or the refresh token that descends from it) remembers how and when the user
      // signed in; resource servers need both to enforce acr and max_age per tool.
      const source = sourceOf(ctx)
      const claims: Record<string, unknown> = {}
      if (source?.acr !== undefined) claims['acr'] = source.acr
      if (source?.authTime !== undefined) claims['auth_time'] = source.authTime
      return claims
    },
    async expiresWithSession() {
      return false
    },
    async issueRefreshToken(_ctx: unknown, client: OidcClient, source: OidcToken) {
      // An approval covers one call: a refresh token would turn it into a standing permission.
      return client.grantTypeAllowed('refresh_token') && !hasToolCall(source.rar)
    },
    // Every refresh rotates, and reuse of a rotated token revokes the whole grant
    // (OAuth 2.1 §4.3.1, refresh token replay detection).
    rotateRefreshToken: true,
    conformIdTokenClaims: true,
    interactions: {
      policy,
      url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}`,
    },
    renderError: async (ctx: KoaContextWithOIDC, out: Record<string, string>) => {
      options.renderError(ctx, out)
    },
    ttl: {
      AccessToken: (_ctx: unknown, token: OidcToken) =>
        hasToolCall(token.rar) ? options.approvalTtl : options.accessTokenTtl,
      AuthorizationCode: 60,
      IdToken: 300,
      RefreshToken: 24 * 60 * 60,
      Interaction: 10 * 60,
      Session: 24 * 60 * 60,
      Grant: 24 * 60 * 60,
    },
    features: {
      devInteractions: { enabled: false },
      // Kept for completeness (and because oidc-provider routes an account switch through it),
      // with this package's pages instead of the defaults that load web fonts.
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx: KoaContextWithOIDC, form: string) =>
          options.renderLogout(ctx, form),
        postLogoutSuccessSource: async (ctx: KoaContextWithOIDC) =>
          options.renderLogout(ctx, undefined),
      },
      userinfo: { enabled: false },
      revocation: { enabled: true },
      dPoP: { enabled: true },
      registration: { enabled: true, initialAccessToken: false },
      clientIdMetadataDocument: {
        enabled: true,
        ack: 'draft-02',
      },
      resourceIndicators: {
        enabled: true,
        async defaultResource(ctx: KoaContextWithOIDC, _client: unknown, oneOf?: string[]) {
          if (oneOf) return oneOf
          // A token without an audience would be accepted by any resource server that forgets
          // to check `aud`: refuse to mint one.
          if (
            ctx.oidc.route === 'authorization' ||
            ctx.oidc.route === 'pushed_authorization_request'
          ) {
            throw new errors.InvalidTarget(
              `the resource parameter (RFC 8707) is required; this server knows ${resourceUris.join(', ')}`,
            )
          }
          return undefined
        },
        useGrantedResource: async () => true,
        async getResourceServerInfo(_ctx: unknown, indicator: string) {
          const resource = options.resources.find((r) => r.uri === indicator)
          if (!resource) {
            throw new errors.InvalidTarget(`unknown resource ${indicator}`)
          }
          return {
            scope: resource.scopes.join(' '),
            audience: resource.uri,
            accessTokenFormat: 'jwt',
            accessTokenTTL: options.accessTokenTtl,
            jwt: { sign: { alg: 'ES256' } },
          }
        },
      },
      richAuthorizationRequests: {
        enabled: true,
        types: {
          [MCP_TOOL_CALL]: {
            validate(ctx: KoaContextWithOIDC, detail: unknown) {
              try {
                const call = validateMcpToolCall(detail, resourceUris)
                // The approval must be for the resource the token is requested for; otherwise
                // the token's audience and the call it names would point at different servers.
                const requested = ctx.oidc.params.resource
                const list = typeof requested === 'string' ? [requested] : (requested ?? [])
                if (list.length > 0 && !list.includes(call.resource)) {
                  throw new AuthorizationDetailsError(
                    `resource ${call.resource} of the ${MCP_TOOL_CALL} is not a requested resource`,
                  )
                }
              } catch (error) {
                if (error instanceof AuthorizationDetailsError) {
                  throw new errors.InvalidAuthorizationDetails(error.message)
                }
                throw error
              }
            },
          },
        },
        // Only what this very request asked for goes on the code: the grant keeps earlier
        // approvals, which would otherwise leak into later tokens (tested). Requiring each entry
        // to be in the grant too is defence in depth: oidc-provider already forces a fresh
        // approval page whenever authorization_details are requested.
        authorizationDetailsForGrantSource: (ctx: KoaContextWithOIDC) => {
          const approved = ctx.oidc.grant?.rar ?? []
          const requested = parseRequestedDetails(ctx)
          const granted = requested
            .map((d) => validateMcpToolCall(d, resourceUris))
            .filter((d) => approved.some((a) => sameDetail(a, d)))
            .map(forToken)
          return granted.length ? granted : undefined
        },
        authorizationDetailsForAccessToken: (
          _ctx: KoaContextWithOIDC,
          _token: OidcToken,
          source: OidcToken | undefined,
          grantType: string,
        ) => {
          // Approvals ride on the authorization code only; a refresh never carries them.
          if (grantType !== 'authorization_code') return undefined
          return source?.rar
        },
        authorizationDetailsForIntrospection: (_ctx: unknown, token: OidcToken) => token.rar,
      },
    },
  }

  const provider = new Provider(options.issuer, configuration)
  provider.use(defaultScopes((uri) => options.resources.find((r) => r.uri === uri)?.scopes))
  provider.use(oauthStepUpParams)
  registerTokenExchange(provider, {
    issuer: options.issuer,
    signingKey: options.signingKey,
    rules: options.tokenExchange,
    accessTokenTtl: options.accessTokenTtl,
  })
  registerJwtBearer(provider, {
    issuer: options.issuer,
    rules: options.jwtBearer,
    resources: options.resources,
    accessTokenTtl: options.accessTokenTtl,
  })
  // oidc-provider keeps the precise reason of a refused token or registration request in
  // `error_detail` and answers with a generic description. A development server should say what
  // was wrong ("DPoP proof JWT not provided"), so the detail is appended.
  for (const event of ['grant.error', 'registration_create.error']) {
    provider.on(event, (ctx, error) => {
      const body = (ctx as { body?: unknown }).body
      const detail = (error as { error_detail?: unknown }).error_detail
      if (body && typeof body === 'object' && typeof detail === 'string') {
        const out = body as { error_description?: string }
        out.error_description = out.error_description
          ? `${out.error_description}: ${detail}`
          : detail
      }
    })
  }
  return provider
}
