/**
 * RFC 8693 token exchange for MCP servers that call another API on their caller's behalf.
 *
 * An MCP server (a confidential client, authenticated with private_key_jwt) sends the access token
 * its caller presented as `subject_token` and names one downstream resource. The token it gets
 * back is for that resource only, carries the caller as `sub` and the MCP server as `act`
 * (RFC 8693 §4.1), holds only the scopes the policy allows, never outlives the subject token and
 * is DPoP-bound to the MCP server's own key. The caller's token itself never leaves the MCP server.
 *
 * oidc-provider 9 has no token exchange of its own; it is registered as a custom grant type
 * (`provider.registerGrantType`) and reuses oidc-provider's client authentication, its DPoP proof
 * check and replay detection, and its access token model and JWT format.
 *
 * @module
 */
import { errors } from 'oidc-provider'
import type { KoaContextWithOIDC, OidcToken, Provider } from 'oidc-provider'
import validateDpop from 'oidc-provider/lib/helpers/validate_dpop.js'
import { applyDpopBinding } from 'oidc-provider/lib/helpers/grant_common.js'
import { importJWK, jwtVerify } from 'jose'
import type { JWK, JWTPayload } from 'jose'
import type { TokenExchangeRule } from './types.js'
import { findUser } from './users.js'

/** The grant type of RFC 8693 §2.1. */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange'

/** The token type identifier of an OAuth access token (RFC 8693 §3). */
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'

const PARAMETERS = [
  'subject_token',
  'subject_token_type',
  'actor_token',
  'actor_token_type',
  'requested_token_type',
  'resource',
  'audience',
  'scope',
]

/**
 * At most this many issued access tokens are remembered with their grant. Past it the oldest is
 * forgotten, and exchanging it is refused (fail closed): a development server never has this many
 * live tokens at once.
 */
const MAX_REMEMBERED_TOKENS = 100_000

/**
 * Which grant each JWT access token came from, by `jti`, until the token expires.
 *
 * oidc-provider does not store JWT access tokens (they are "issued", not saved), and their claims
 * do not name their grant; its own introspection finds a token's grant through the stored token.
 * The exchange needs the same answer for a JWT subject token: has the user's grant been revoked
 * (RFC 7009 revocation of its refresh token, refresh token reuse, sign-out) since the token was
 * issued? So every access token's grant is noted here when it is issued.
 */
class IssuedTokens {
  readonly #grants = new Map<string, { grantId: string; exp: number }>()

  note(token: OidcToken & { readonly expiration?: number }): void {
    if (typeof token.grantId !== 'string') return
    // A JWT access token's `exp` is computed when it is signed, from its lifetime.
    const exp = token.exp ?? Math.floor(Date.now() / 1000) + (token.expiration ?? 0)
    if (this.#grants.size >= MAX_REMEMBERED_TOKENS) this.#sweep()
    this.#grants.set(token.jti, { grantId: token.grantId, exp })
  }

  /** The grant of the unexpired token `jti`, or undefined. */
  grantOf(jti: unknown): string | undefined {
    if (typeof jti !== 'string') return undefined
    const entry = this.#grants.get(jti)
    if (entry === undefined) return undefined
    if (entry.exp <= Math.floor(Date.now() / 1000)) {
      this.#grants.delete(jti)
      return undefined
    }
    return entry.grantId
  }

  /** Drops expired entries, then the oldest ones while still full. */
  #sweep(): void {
    const now = Math.floor(Date.now() / 1000)
    for (const [jti, entry] of this.#grants) if (entry.exp <= now) this.#grants.delete(jti)
    for (const jti of this.#grants.keys()) {
      if (this.#grants.size < MAX_REMEMBERED_TOKENS) break
      this.#grants.delete(jti)
    }
  }
}

/** The `act` claim and the sign-in facts an exchanged token carries, by token. */
const exchanged = new WeakMap<object, Record<string, unknown>>()

/** Extra claims of an exchanged access token (for `extraTokenClaims`), or undefined. */
export function exchangedClaims(token: OidcToken): Record<string, unknown> | undefined {
  return exchanged.get(token)
}

interface ExchangeContext {
  issuer: string
  signingKey: JWK
  rules: readonly TokenExchangeRule[]
  accessTokenTtl: number
}

function single(ctx: KoaContextWithOIDC, name: string): string | undefined {
  const value = (ctx.oidc.params as Record<string, unknown>)[name]
  if (value === undefined) return undefined
  if (typeof value !== 'string' || value === '') {
    throw new errors.InvalidRequest(`${name} must be given once`)
  }
  return value
}

/**
 * Validates the exchange policy at start: a typo must stop the server, not refuse (or allow) at
 * the first exchange.
 *
 * @internal
 */
export function validateExchangeRules(
  rules: readonly TokenExchangeRule[] | undefined,
  fail: (message: string) => never,
): TokenExchangeRule[] {
  if (rules === undefined) return []
  if (!Array.isArray(rules)) fail('tokenExchange must be an array of rules')
  return rules.map((rule, index) => {
    const where = `tokenExchange[${index}]`
    if (typeof rule?.client !== 'string' || rule.client === '') fail(`${where}.client is required`)
    for (const key of ['subject', 'resource'] as const) {
      const url = typeof rule[key] === 'string' ? URL.parse(rule[key]) : null
      if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.hash) {
        fail(`${where}.${key} must be an absolute http(s) URI`)
      }
    }
    if (
      !Array.isArray(rule.scopes) ||
      rule.scopes.length === 0 ||
      rule.scopes.some(
        (s: unknown) => typeof s !== 'string' || !/^[\x21\x23-\x5B\x5D-\x7E]+$/.test(s),
      )
    ) {
      fail(`${where}.scopes must list at least one scope token`)
    }
    return {
      client: rule.client,
      subject: rule.subject,
      resource: rule.resource,
      scopes: [...rule.scopes],
    }
  })
}

/**
 * Registers the token exchange grant on `provider`.
 *
 * @internal
 */
export function registerTokenExchange(provider: Provider, options: ExchangeContext): void {
  let key: Promise<CryptoKey | Uint8Array> | undefined
  const publicKey = () => {
    const { d: _private, ...jwk } = options.signingKey
    key ??= importJWK(jwk, 'ES256')
    return key
  }
  const issued = new IssuedTokens()
  provider.on('access_token.issued', (token) => issued.note(token as OidcToken))

  /**
   * Refuses a subject token whose grant is gone: the same test oidc-provider's introspection
   * applies to its stored tokens (the grant exists, has not expired, and is this user's at this
   * client). Without it, a user whose grant was revoked would still have their token exchanged
   * for downstream authority until it expires.
   */
  async function assertGrantAlive(subject: JWTPayload): Promise<void> {
    const grantId = issued.grantOf(subject.jti)
    const grant = grantId === undefined ? undefined : await provider.Grant.find(grantId)
    if (
      grant === undefined ||
      grant.isExpired ||
      grant.accountId !== subject.sub ||
      grant.clientId !== subject['client_id']
    ) {
      throw new errors.InvalidGrant(
        'the grant behind subject_token has been revoked or has expired: the user must authorize again',
      )
    }
  }

  async function handler(ctx: KoaContextWithOIDC): Promise<void> {
    const { client } = ctx.oidc
    // Only MCP servers the policy names may exchange at all; anyone else holding a token gets
    // nothing for it.
    const rules = options.rules.filter((r) => r.client === client.clientId)
    if (rules.length === 0) {
      throw new errors.UnauthorizedClient(
        `client ${client.clientId} is not allowed to exchange tokens`,
      )
    }
    const subjectToken = single(ctx, 'subject_token')
    if (subjectToken === undefined) throw new errors.InvalidRequest('subject_token is required')
    if (single(ctx, 'subject_token_type') !== ACCESS_TOKEN_TYPE) {
      throw new errors.InvalidRequest(`subject_token_type must be ${ACCESS_TOKEN_TYPE}`)
    }
    const requested = single(ctx, 'requested_token_type')
    if (requested !== undefined && requested !== ACCESS_TOKEN_TYPE) {
      throw new errors.InvalidRequest(`requested_token_type must be ${ACCESS_TOKEN_TYPE}`)
    }
    // The authenticated client is the actor; a separate actor token would let one client speak
    // for another.
    if (single(ctx, 'actor_token') !== undefined) {
      throw new errors.InvalidRequest('actor_token is not supported: the authenticated client acts')
    }
    const resource = single(ctx, 'resource')
    const audience = single(ctx, 'audience')
    if (resource !== undefined && audience !== undefined && resource !== audience) {
      throw new errors.InvalidTarget('resource and audience name different services')
    }
    const target = resource ?? audience
    if (target === undefined) {
      throw new errors.InvalidTarget('name the downstream service in resource (RFC 8707)')
    }

    let subject: JWTPayload
    try {
      ;({ payload: subject } = await jwtVerify(subjectToken, await publicKey(), {
        issuer: options.issuer,
        typ: 'at+jwt',
        algorithms: ['ES256'],
      }))
    } catch {
      throw new errors.InvalidGrant('subject_token is not a valid access token of this issuer')
    }
    const audiences = typeof subject.aud === 'string' ? [subject.aud] : (subject.aud ?? [])
    // The caller's token must have been issued *to this MCP server*: otherwise a server that
    // obtained someone's token for another resource could turn it into downstream authority.
    const rule = rules.find((r) => audiences.includes(r.subject) && r.resource === target)
    if (rule === undefined) {
      throw new errors.InvalidTarget(
        `client ${client.clientId} may not exchange a token for ${audiences.join(', ')} for ${target}`,
      )
    }
    const scopes = (single(ctx, 'scope') ?? '').split(' ').filter(Boolean)
    if (scopes.length === 0) {
      throw new errors.InvalidScope(
        `scope is required: ask for the narrowest of ${rule.scopes.join(' ')}`,
      )
    }
    const refused = scopes.filter((s) => !rule.scopes.includes(s))
    if (refused.length > 0) {
      throw new errors.InvalidScope(
        `scope ${refused.join(' ')} is not allowed for ${target}; allowed: ${rule.scopes.join(' ')}`,
      )
    }
    const sub = subject.sub
    if (typeof sub !== 'string' || findUser(sub) === undefined) {
      throw new errors.InvalidGrant('subject_token names no known user')
    }
    await assertGrantAlive(subject)
    const dPoP = await validateDpop(provider, ctx)
    if (dPoP === undefined) {
      throw new errors.InvalidRequest(
        'a DPoP proof is required: exchanged tokens are bound to the MCP server key',
      )
    }

    const now = Math.floor(Date.now() / 1000)
    const remaining = typeof subject.exp === 'number' ? subject.exp - now : 0
    if (remaining <= 0) throw new errors.InvalidGrant('subject_token has expired')
    const token = new provider.AccessToken({
      accountId: sub,
      client,
      gty: TOKEN_EXCHANGE_GRANT,
      scope: scopes.join(' '),
      // Never longer than the caller's own authority.
      expiresIn: Math.min(options.accessTokenTtl, remaining),
    })
    token.resourceServer = {
      identifier: () => rule.resource,
      audience: rule.resource,
      scope: rule.scopes.join(' '),
      accessTokenFormat: 'jwt',
      accessTokenTTL: options.accessTokenTtl,
      jwt: { sign: { alg: 'ES256' } },
    }
    // RFC 8693 §4.1: the MCP server is the current actor; a chain already in the subject token
    // is kept below it.
    const act: Record<string, unknown> = { sub: client.clientId }
    if (subject['act'] !== undefined) act['act'] = subject['act']
    const claims: Record<string, unknown> = { act }
    if (typeof subject['acr'] === 'string') claims['acr'] = subject['acr']
    if (typeof subject['auth_time'] === 'number') claims['auth_time'] = subject['auth_time']
    exchanged.set(token, claims)
    await applyDpopBinding(provider, ctx, dPoP, token)
    const value = await token.save()
    ctx.body = {
      access_token: value,
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: token.tokenType,
      expires_in: token.expiration,
      scope: token.scope,
    }
  }

  provider.registerGrantType(TOKEN_EXCHANGE_GRANT, handler, PARAMETERS, [])
}
