/**
 * Opaque access tokens through RFC 7662 token introspection.
 *
 * JWT access tokens are the default; an authorization server that issues opaque tokens can be
 * used by asking it about each token. The answer must still bind the token to a key
 * (`cnf.jkt`, RFC 9449 §6.2): an unbound opaque token is refused like an unbound JWT, because a
 * bearer token is exactly what lets another caller ride on someone's authorization.
 *
 * @see https://www.rfc-editor.org/rfc/rfc7662
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-6.2
 * @module
 */
import { CallproofError } from '@callproof/core'
import type { AccessTokenClaims } from '@callproof/core'
import { assertSecureUrl } from './issuer.js'

/** Options of {@link createIntrospector}. */
export interface IntrospectionOptions {
  /** The introspection endpoint (RFC 7662 §2). */
  endpoint: string
  /** The issuer whose tokens this endpoint describes; its answer's `iss`, when present, must match. */
  issuer: string
  /** This resource server's client id at the authorization server. */
  clientId: string
  /** Its client secret. */
  clientSecret: string
  /** How the client authenticates (default `client_secret_basic`, RFC 6749 §2.3.1). */
  authMethod?: 'client_secret_basic' | 'client_secret_post'
  /**
   * Reuse an answer for this many seconds (default 30, never past the token's `exp`; 0 disables).
   * Longer means fewer calls to the authorization server and a later notice of revocation.
   */
  cacheSeconds?: number
  /** Request timeout in milliseconds (default 5000). */
  timeoutMs?: number
  /** The fetch implementation (default the global one). */
  fetch?: typeof fetch
  /** Milliseconds since the epoch (default `Date.now`). */
  clock?: () => number
}

/** Asks the authorization server about opaque tokens. */
export interface Introspector {
  /**
   * The claims of an active, DPoP-bound token meant for `audience`. Throws `ERR_INVALID_TOKEN`
   * for an inactive, expired, unbound or foreign token, `ERR_STORE_UNAVAILABLE` when the
   * endpoint cannot answer (fail closed).
   */
  introspect(token: string, audience: string): Promise<AccessTokenClaims>
}

/**
 * Creates an introspection client.
 *
 * @example
 * ```ts
 * const introspector = createIntrospector({
 *   endpoint: 'https://as.example/token/introspection',
 *   issuer: 'https://as.example',
 *   clientId: 'drive-api',
 *   clientSecret: process.env.DRIVE_INTROSPECTION_SECRET!,
 * })
 * const claims = await introspector.introspect(opaqueToken, 'https://drive.example/mcp')
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc7662#section-2.1
 */
export function createIntrospector(options: IntrospectionOptions): Introspector {
  const endpoint = assertSecureUrl(options.endpoint, 'introspection endpoint')
  if (typeof options.clientId !== 'string' || options.clientId === '') {
    throw new CallproofError('ERR_INVALID_OPTIONS', 'introspection needs a clientId')
  }
  if (typeof options.clientSecret !== 'string' || options.clientSecret === '') {
    throw new CallproofError('ERR_INVALID_OPTIONS', 'introspection needs a clientSecret')
  }
  const authMethod = options.authMethod ?? 'client_secret_basic'
  if (authMethod !== 'client_secret_basic' && authMethod !== 'client_secret_post') {
    throw new CallproofError(
      'ERR_INVALID_OPTIONS',
      `unsupported introspection auth method ${String(authMethod)}`,
    )
  }
  const cacheMs = (options.cacheSeconds ?? 30) * 1000
  const clock = options.clock ?? Date.now
  const doFetch = options.fetch ?? fetch
  const cache = new Map<string, { claims: Record<string, unknown>; until: number }>()

  async function ask(token: string): Promise<Record<string, unknown>> {
    const key = await digest(token)
    const now = clock()
    const hit = cache.get(key)
    if (hit !== undefined && hit.until > now) return hit.claims
    cache.delete(key)

    const body = new URLSearchParams({ token, token_type_hint: 'access_token' })
    const headers: Record<string, string> = {
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    }
    if (authMethod === 'client_secret_basic') {
      // RFC 6749 §2.3.1: id and secret are form-urlencoded before the Basic encoding.
      const id = encodeURIComponent(options.clientId)
      const secret = encodeURIComponent(options.clientSecret)
      headers['authorization'] = `Basic ${btoa(`${id}:${secret}`)}`
    } else {
      body.set('client_id', options.clientId)
      body.set('client_secret', options.clientSecret)
    }
    let response: Response
    try {
      response = await doFetch(endpoint, {
        method: 'POST',
        headers,
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(options.timeoutMs ?? 5000),
      })
    } catch (cause) {
      throw new CallproofError(
        'ERR_STORE_UNAVAILABLE',
        'the introspection endpoint could not be reached',
        { cause },
      )
    }
    if (response.status !== 200) {
      await response.body?.cancel()
      throw new CallproofError(
        'ERR_STORE_UNAVAILABLE',
        `the introspection endpoint answered HTTP ${response.status}`,
      )
    }
    let answer: unknown
    try {
      answer = await response.json()
    } catch (cause) {
      throw new CallproofError('ERR_STORE_UNAVAILABLE', 'the introspection answer is not JSON', {
        cause,
      })
    }
    if (typeof answer !== 'object' || answer === null || Array.isArray(answer)) {
      throw new CallproofError(
        'ERR_STORE_UNAVAILABLE',
        'the introspection answer is not a JSON object',
      )
    }
    const claims = answer as Record<string, unknown>
    if (claims['active'] === true && cacheMs > 0) {
      const exp = typeof claims['exp'] === 'number' ? claims['exp'] * 1000 : now
      cache.set(key, { claims, until: Math.min(now + cacheMs, exp) })
      if (cache.size > 10_000) cache.delete(cache.keys().next().value as string)
    }
    return claims
  }

  return {
    async introspect(token, audience) {
      const claims = await ask(token)
      const bad = (why: string) =>
        new CallproofError('ERR_INVALID_TOKEN', `introspected token ${why}`)
      if (claims['active'] !== true) throw bad('is not active')
      const now = Math.floor(clock() / 1000)
      const exp = claims['exp']
      if (typeof exp !== 'number' || exp <= now) throw bad('is expired or has no exp')
      if (claims['iss'] !== undefined && claims['iss'] !== options.issuer) {
        throw bad(
          `issuer ${JSON.stringify(claims['iss'])} is not ${JSON.stringify(options.issuer)}`,
        )
      }
      const aud = claims['aud']
      const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : []
      if (!audiences.includes(audience)) throw bad(`audience does not include ${audience}`)
      const cnf = claims['cnf'] as { jkt?: unknown } | undefined
      if (typeof cnf?.jkt !== 'string' || cnf.jkt === '') {
        throw bad('is not bound to a key (cnf.jkt missing); bearer tokens are not accepted')
      }
      const sub = claims['sub']
      const clientId = claims['client_id']
      if (typeof sub !== 'string' || typeof clientId !== 'string')
        throw bad('has no sub or client_id')
      const iat = typeof claims['iat'] === 'number' ? claims['iat'] : now
      // Opaque tokens need not carry a jti; the digest of the token names it without revealing it.
      const jti =
        typeof claims['jti'] === 'string' ? claims['jti'] : `introspected:${await digest(token)}`
      return {
        ...(claims as object),
        iss: options.issuer,
        sub,
        aud: aud as string | string[],
        exp,
        iat,
        jti,
        client_id: clientId,
        cnf: { jkt: cnf.jkt },
      } as AccessTokenClaims
    },
  }
}

async function digest(token: string): Promise<string> {
  const hash = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(token))
  return Buffer.from(hash).toString('base64url')
}
