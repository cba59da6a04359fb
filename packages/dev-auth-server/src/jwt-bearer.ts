/**
 * The JWT-bearer authorization grant (RFC 7523 §2.1) for agents without a user at the keyboard:
 * an enterprise identity provider's ID-JAG (enterprise-managed authorization,
 * draft-ietf-oauth-identity-assertion-authz-grant) or a workload platform's token (workload
 * identity federation), from an issuer configured with its keys (`jwtBearer`).
 *
 * Like the token exchange, a custom grant type of oidc-provider that reuses its client
 * authentication, its DPoP proof check and its access token model; every token is DPoP-bound.
 *
 * @module
 */
import { errors } from 'oidc-provider'
import type { KoaContextWithOIDC, Provider } from 'oidc-provider'
import validateDpop from 'oidc-provider/lib/helpers/validate_dpop.js'
import { applyDpopBinding } from 'oidc-provider/lib/helpers/grant_common.js'
import { createLocalJWKSet, decodeJwt, jwtVerify } from 'jose'
import type { JSONWebKeySet, JWTPayload } from 'jose'
import type { DevResource, JwtBearerTrust } from './types.js'
import { findUser } from './users.js'

/** The grant type of RFC 7523 §2.1. */
export const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer'

/** The JOSE `typ` of an ID-JAG. */
const ID_JAG_TYP = 'oauth-id-jag+jwt'

const ALGORITHMS = ['ES256', 'EdDSA', 'Ed25519', 'RS256']

const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/

interface BearerContext {
  issuer: string
  rules: readonly JwtBearerTrust[]
  resources: readonly DevResource[]
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
 * Validates the trusted issuers at start: a typo must stop the server, not surface at the first
 * grant.
 *
 * @internal
 */
export function validateJwtBearerTrust(
  rules: readonly JwtBearerTrust[] | undefined,
  fail: (message: string) => never,
): JwtBearerTrust[] {
  if (rules === undefined) return []
  if (!Array.isArray(rules)) fail('jwtBearer must be an array of trusted issuers')
  return rules.map((rule, index) => {
    const where = `jwtBearer[${index}]`
    if (rule?.kind !== 'id-jag' && rule?.kind !== 'workload') {
      fail(`${where}.kind must be 'id-jag' or 'workload'`)
    }
    if (typeof rule.issuer !== 'string' || !URL.canParse(rule.issuer)) {
      fail(`${where}.issuer must be an absolute URI`)
    }
    if (
      !Array.isArray(rule.keys) ||
      rule.keys.length === 0 ||
      rule.keys.some((k: unknown) => typeof k !== 'object' || k === null || 'd' in k)
    ) {
      fail(`${where}.keys must list the issuer's public JWKs (no private key)`)
    }
    if (
      rule.scopes !== undefined &&
      (!Array.isArray(rule.scopes) ||
        rule.scopes.some((s: unknown) => typeof s !== 'string' || !SCOPE_TOKEN.test(s)))
    ) {
      fail(`${where}.scopes must be scope tokens`)
    }
    if (rule.kind === 'id-jag') {
      if (!Array.isArray(rule.clients) || rule.clients.length === 0) {
        fail(`${where}.clients must name the clients that may present its ID-JAGs`)
      }
      return { ...rule, keys: [...rule.keys], clients: [...rule.clients] }
    }
    if (typeof rule.client !== 'string' || rule.client === '') fail(`${where}.client is required`)
    if (typeof rule.subject !== 'string' || rule.subject === '') {
      fail(`${where}.subject is required`)
    }
    return { ...rule, keys: [...rule.keys] }
  })
}

/** Seen ID-JAG `jti`s until they expire: an ID-JAG grants once (draft §4.3 / RFC 7523 §3). */
class SeenIds {
  readonly #seen = new Map<string, number>()
  /** Whether `key` was new (and remembers it until `exp`). */
  add(key: string, exp: number): boolean {
    const now = Math.floor(Date.now() / 1000)
    for (const [k, e] of this.#seen) if (e < now) this.#seen.delete(k)
    if (this.#seen.has(key)) return false
    this.#seen.set(key, exp)
    return true
  }
}

/**
 * Registers the JWT-bearer grant on `provider` (only when trusted issuers are configured).
 *
 * @internal
 */
export function registerJwtBearer(provider: Provider, options: BearerContext): void {
  if (options.rules.length === 0) return
  const keySets = new Map(
    options.rules.map((rule) => [
      rule,
      createLocalJWKSet({ keys: rule.keys } as unknown as JSONWebKeySet),
    ]),
  )
  const seen = new SeenIds()

  async function handler(ctx: KoaContextWithOIDC): Promise<void> {
    const { client } = ctx.oidc
    const assertion = single(ctx, 'assertion')
    if (assertion === undefined) throw new errors.InvalidRequest('assertion is required')
    let unverified: JWTPayload
    try {
      unverified = decodeJwt(assertion)
    } catch {
      throw new errors.InvalidGrant('assertion is not a JWT')
    }
    const candidates = options.rules.filter((r) => r.issuer === unverified.iss)
    if (candidates.length === 0) {
      throw new errors.InvalidGrant('the assertion is not from a trusted issuer')
    }
    // Whose assertion may this client present? An ID-JAG issuer lists its clients; a workload
    // issuer maps one subject to one client.
    const rule = candidates.find((r) =>
      r.kind === 'id-jag'
        ? r.clients.includes(client.clientId)
        : r.client === client.clientId && r.subject === unverified.sub,
    )
    if (rule === undefined) {
      throw new errors.UnauthorizedClient(
        `client ${client.clientId} may not present this issuer's assertions`,
      )
    }
    let claims: JWTPayload
    try {
      ;({ payload: claims } = await jwtVerify(assertion, keySets.get(rule)!, {
        issuer: rule.issuer,
        // RFC 7523 §3: the authorization server's issuer or its token endpoint.
        audience: [options.issuer, `${options.issuer}/`, ctx.oidc.urlFor('token')],
        algorithms: ALGORITHMS,
        requiredClaims: rule.kind === 'id-jag' ? ['exp', 'jti', 'sub'] : ['exp', 'sub'],
        ...(rule.kind === 'id-jag' && { typ: ID_JAG_TYP }),
        clockTolerance: 5,
      }))
    } catch (error) {
      throw new errors.InvalidGrant(`the assertion is not valid: ${(error as Error).message}`)
    }
    const sub = claims.sub as string
    let resourceUri = single(ctx, 'resource')
    if (rule.kind === 'id-jag') {
      // The ID-JAG names the client it was issued to and the resource; both must be this
      // request's, or one client could redeem another's grant, or for another server.
      if (claims['client_id'] !== client.clientId) {
        throw new errors.InvalidGrant('the ID-JAG was issued to another client')
      }
      const granted = claims['resource']
      if (typeof granted !== 'string') throw new errors.InvalidGrant('the ID-JAG names no resource')
      if (resourceUri !== undefined && resourceUri !== granted) {
        throw new errors.InvalidTarget('resource is not the ID-JAG resource')
      }
      resourceUri = granted
      if (findUser(sub) === undefined)
        throw new errors.InvalidGrant('the ID-JAG names no known user')
      if (!seen.add(`${rule.issuer} ${claims.jti as string}`, claims.exp as number)) {
        throw new errors.InvalidGrant('the ID-JAG was used already')
      }
    }
    if (resourceUri === undefined) {
      throw new errors.InvalidTarget('the resource parameter (RFC 8707) is required')
    }
    const resource = options.resources.find((r) => r.uri === resourceUri)
    if (resource === undefined) throw new errors.InvalidTarget(`unknown resource ${resourceUri}`)

    const allowed = resource.scopes.filter(
      (s) => rule.scopes === undefined || rule.scopes.includes(s),
    )
    const idJagScopes =
      rule.kind === 'id-jag' && typeof claims['scope'] === 'string'
        ? claims['scope'].split(' ')
        : undefined
    const ceiling = idJagScopes ? allowed.filter((s) => idJagScopes.includes(s)) : allowed
    const requested = (single(ctx, 'scope') ?? '').split(' ').filter(Boolean)
    const refused = requested.filter((s) => !ceiling.includes(s))
    if (refused.length > 0) {
      throw new errors.InvalidScope(
        `scope ${refused.join(' ')} may not be granted to this assertion`,
      )
    }
    const scopes = requested.length > 0 ? requested : ceiling
    if (scopes.length === 0) throw new errors.InvalidScope('no scope may be granted')

    const dPoP = await validateDpop(provider, ctx)
    if (dPoP === undefined) {
      throw new errors.InvalidRequest(
        'a DPoP proof is required: this server issues only DPoP-bound tokens (RFC 9449)',
      )
    }
    const token = new provider.AccessToken({
      accountId: sub,
      client,
      gty: JWT_BEARER_GRANT,
      scope: scopes.join(' '),
      expiresIn: options.accessTokenTtl,
    })
    token.resourceServer = {
      identifier: () => resource.uri,
      audience: resource.uri,
      scope: resource.scopes.join(' '),
      accessTokenFormat: 'jwt',
      accessTokenTTL: options.accessTokenTtl,
      jwt: { sign: { alg: 'ES256' } },
    }
    await applyDpopBinding(provider, ctx, dPoP, token)
    const value = await token.save()
    ctx.body = {
      access_token: value,
      token_type: token.tokenType,
      expires_in: token.expiration,
      scope: token.scope,
    }
  }

  provider.registerGrantType(JWT_BEARER_GRANT, handler, ['assertion', 'resource', 'scope'], [])
}
