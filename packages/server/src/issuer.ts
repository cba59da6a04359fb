/**
 * Trusted issuers: authorization server metadata discovery and their signing keys.
 *
 * The keys of an issuer come only from the `jwks_uri` of its own metadata, and the metadata is
 * accepted only when its `issuer` equals the configured issuer exactly (RFC 8414 §3.3): otherwise
 * one authorization server could publish metadata that makes us trust another's keys as its own.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8414#section-3
 * @module
 */
import { createLocalJWKSet, createRemoteJWKSet, customFetch, decodeJwt } from 'jose'
import type { JSONWebKeySet, JWTVerifyGetKey } from 'jose'
import { isLoopbackHost } from '@callproof/core'

/** The fields of RFC 8414 / OpenID Connect Discovery metadata callproof reads. */
export interface AuthorizationServerMetadata {
  readonly issuer: string
  readonly jwks_uri: string
  readonly introspection_endpoint?: string
  readonly scopes_supported?: readonly string[]
  readonly [key: string]: unknown
}

/** Options of {@link discoverIssuer}. */
export interface DiscoveryOptions {
  /** Fetch timeout per document in milliseconds (default 5000). */
  timeoutMs?: number
  /** The fetch implementation (default the global one). */
  fetch?: typeof fetch
}

/**
 * The discovery URLs to try, in order: RFC 8414 path-inserted, then OpenID Connect Discovery
 * (path appended, OIDC Discovery §4).
 *
 * @example
 * ```ts
 * discoveryUrls('https://as.example/tenant')
 * // ['https://as.example/.well-known/oauth-authorization-server/tenant',
 * //  'https://as.example/tenant/.well-known/openid-configuration']
 * ```
 */
export function discoveryUrls(issuer: string): string[] {
  const url = new URL(issuer)
  const path = url.pathname === '/' ? '' : url.pathname.replace(/\/+$/, '')
  return [
    new URL(`/.well-known/oauth-authorization-server${path}`, url.origin).href,
    new URL(`${path}/.well-known/openid-configuration`, url.origin).href,
  ]
}

/**
 * Refuses plain-HTTP URLs except on loopback: keys fetched over HTTP from the network could be
 * swapped by anyone on the path.
 *
 * @example
 * ```ts
 * assertSecureUrl('http://127.0.0.1:4000', 'issuer') // ok: loopback
 * assertSecureUrl('http://as.example', 'issuer') // throws
 * ```
 */
export function assertSecureUrl(value: string, what: string): URL {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new TypeError(`${what} ${JSON.stringify(value)} is not an absolute URL`)
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isPlainLoopback(url.hostname))) {
    throw new TypeError(`${what} ${url.href} must use https (http is allowed on loopback only)`)
  }
  return url
}

/**
 * Loopback that no resolver is asked about: an address literal, or `localhost` itself (every
 * hosts file names it). A name under `.localhost` is loopback by RFC 6761, but Node hands it to
 * the system resolver, which may ask DNS; whoever answers would then serve the keys we trust, in
 * the clear. So keys travel over http only to these.
 */
function isPlainLoopback(hostname: string): boolean {
  const name = hostname.toLowerCase().replace(/\.$/, '')
  return isLoopbackHost(name) && (name === 'localhost' || !/\.localhost$|^[a-z]/.test(name))
}

/**
 * Fetches and checks an issuer's metadata.
 *
 * @example
 * ```ts
 * const metadata = await discoverIssuer('https://as.example')
 * metadata.jwks_uri // 'https://as.example/jwks'
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc8414#section-3
 */
export async function discoverIssuer(
  issuer: string,
  options: DiscoveryOptions = {},
): Promise<AuthorizationServerMetadata> {
  assertSecureUrl(issuer, 'issuer')
  const doFetch = options.fetch ?? fetch
  const problems: string[] = []
  for (const url of discoveryUrls(issuer)) {
    let response: Response
    try {
      response = await doFetch(url, {
        headers: { accept: 'application/json' },
        // A redirect could lead discovery to a document the issuer does not control.
        redirect: 'manual',
        signal: AbortSignal.timeout(options.timeoutMs ?? 5000),
      })
    } catch (cause) {
      problems.push(`${url}: ${cause instanceof Error ? cause.message : String(cause)}`)
      continue
    }
    if (response.status !== 200) {
      problems.push(`${url}: HTTP ${response.status}`)
      await response.body?.cancel()
      continue
    }
    let document: unknown
    try {
      document = await response.json()
    } catch {
      problems.push(`${url}: not JSON`)
      continue
    }
    return checkMetadata(issuer, document, url)
  }
  throw new Error(`discovery of issuer ${issuer} failed: ${problems.join('; ')}`)
}

function checkMetadata(
  issuer: string,
  document: unknown,
  url: string,
): AuthorizationServerMetadata {
  if (typeof document !== 'object' || document === null || Array.isArray(document)) {
    throw new Error(`metadata at ${url} is not a JSON object`)
  }
  const metadata = document as Record<string, unknown>
  // Exact string comparison, as RFC 8414 §3.3 requires: no normalization that an attacker could
  // exploit to make a look-alike issuer match.
  if (metadata['issuer'] !== issuer) {
    throw new Error(
      `metadata at ${url} names issuer ${JSON.stringify(metadata['issuer'])}, expected ${JSON.stringify(issuer)}`,
    )
  }
  const jwksUri = metadata['jwks_uri']
  if (typeof jwksUri !== 'string') throw new Error(`metadata at ${url} has no jwks_uri`)
  assertSecureUrl(jwksUri, 'jwks_uri')
  const introspection = metadata['introspection_endpoint']
  if (introspection !== undefined && typeof introspection !== 'string') {
    throw new Error(`metadata at ${url} has a non-string introspection_endpoint`)
  }
  return metadata as unknown as AuthorizationServerMetadata
}

/** A trusted issuer: its identifier, and optionally its JWKS URL (which skips discovery). */
export interface IssuerConfig {
  readonly issuer: string
  readonly jwksUri?: string
}

/** Options of {@link createIssuerKeys}. */
export interface IssuerKeysOptions extends DiscoveryOptions {
  /**
   * After a key set fetch, an unknown `kid` triggers another fetch only after this many
   * milliseconds (default 30 000): a stream of tokens with random `kid`s must not turn us into a
   * load generator against the issuer.
   */
  cooldownMs?: number
  /** How long a fetched key set is used before it is fetched again (default 10 minutes). */
  cacheMaxAgeMs?: number
  /**
   * After a failed discovery or key set fetch, wait this long before trying again (default
   * 5000 ms). Until then, keys still within `cacheMaxAgeMs` keep working and anything else is
   * refused at once.
   */
  retryAfterMs?: number
  /** Milliseconds since the epoch (default `Date.now`). */
  clock?: () => number
}

/** A key resolver over several issuers, plus access to their metadata. */
export interface IssuerKeys {
  /** Resolves the verification key of a JWT by its (signed) `iss` and header `kid`/`alg`. */
  readonly getKey: JWTVerifyGetKey
  /** The checked metadata of a trusted issuer (discovered once, then cached). */
  metadata(issuer: string): Promise<AuthorizationServerMetadata | undefined>
  /** The identifiers of the trusted issuers. */
  readonly issuers: readonly string[]
}

/**
 * Builds the key resolver for the trusted issuers. Discovery happens on first use and is cached;
 * each issuer's key set is a jose remote JWK set (cached, refreshed on an unknown `kid` after
 * the cooldown, so a key rotation is picked up without a restart).
 *
 * @example
 * ```ts
 * const keys = createIssuerKeys([{ issuer: 'https://as.example' }])
 * await jwtVerify(token, keys.getKey, { issuer: 'https://as.example' })
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc7517#section-5
 */
export function createIssuerKeys(
  configs: readonly IssuerConfig[],
  options: IssuerKeysOptions = {},
): IssuerKeys {
  const clock = options.clock ?? Date.now
  const entries = new Map<
    string,
    {
      config: IssuerConfig
      pending?: Promise<{ metadata?: AuthorizationServerMetadata; jwks: JWTVerifyGetKey }>
      failedAt?: number
    }
  >()
  for (const config of configs) {
    assertSecureUrl(config.issuer, 'issuer')
    if (config.jwksUri !== undefined) assertSecureUrl(config.jwksUri, 'jwksUri')
    entries.set(config.issuer, { config })
  }

  const retryAfterMs = options.retryAfterMs ?? 5000

  const remote = (uri: string): JWTVerifyGetKey => {
    // jose counts its cooldown from the last fetch that succeeded. With the issuer unreachable or
    // hung, every token with an unknown `kid` (and, once the cache aged out, every token) would
    // start a fetch and wait for its timeout: a stream of random `kid`s would stall each request
    // and make us a load generator against the issuer. So fetches go through `watched`, and after
    // one fails the cached keys alone answer until `retryAfterMs` has passed.
    let failedAt: number | undefined
    let lastGood: JWTVerifyGetKey | undefined
    const watched = async (url: string, init: RequestInit): Promise<Response> => {
      try {
        const response = await fetch(url, init)
        // Read the body here, under jose's timeout signal, to see the whole fetch succeed or fail.
        const body = await response.text()
        if (response.status !== 200) throw new Error(`key set answered ${response.status}`)
        lastGood = createLocalJWKSet(JSON.parse(body) as JSONWebKeySet)
        failedAt = undefined
        return new Response(body, { status: response.status, headers: response.headers })
      } catch (error) {
        failedAt = clock()
        throw error
      }
    }
    const jwks = createRemoteJWKSet(new URL(uri), {
      cooldownDuration: options.cooldownMs ?? 30_000,
      cacheMaxAge: options.cacheMaxAgeMs ?? 600_000,
      timeoutDuration: options.timeoutMs ?? 5000,
      [customFetch]: watched,
    })
    return async (header, token) => {
      if (failedAt === undefined || clock() - failedAt >= retryAfterMs) return jwks(header, token)
      // Keys still within their cache age keep working; nothing else is fetched until then.
      if (!jwks.fresh || lastGood === undefined) {
        throw new Error(
          `the key set at ${uri} could not be fetched; retrying in ${retryAfterMs} ms`,
        )
      }
      return lastGood(header, token)
    }
  }

  const load = (issuer: string) => {
    const entry = entries.get(issuer)
    if (entry === undefined) return undefined
    // A failed discovery is retried, but not on every request: a dead issuer must not make each
    // incoming request wait for a network timeout.
    if (entry.failedAt !== undefined && clock() - entry.failedAt < (options.retryAfterMs ?? 5000)) {
      return entry.pending
    }
    if (entry.pending === undefined || entry.failedAt !== undefined) {
      delete entry.failedAt
      const { jwksUri } = entry.config
      entry.pending =
        jwksUri !== undefined
          ? Promise.resolve({ jwks: remote(jwksUri) })
          : discoverIssuer(issuer, options).then((metadata) => ({
              metadata,
              jwks: remote(metadata.jwks_uri),
            }))
      entry.pending.catch(() => {
        entry.failedAt = clock()
      })
    }
    return entry.pending
  }

  const getKey: JWTVerifyGetKey = async (header, token) => {
    // The payload is not verified yet; reading `iss` only picks whose keys to try. The signature
    // check that follows proves the issuer really signed it, and the verifier then checks `iss`
    // against the trusted list.
    let iss: unknown
    try {
      iss = decodeJwt(`${token.protected ?? ''}.${String(token.payload)}.`).iss
    } catch {
      throw new Error('access token payload is not a JWT claims set')
    }
    const loaded = typeof iss === 'string' ? load(iss) : undefined
    if (loaded === undefined) throw new Error(`access token issuer ${String(iss)} is not trusted`)
    const { jwks } = await loaded
    return jwks(header, token)
  }

  return {
    getKey,
    issuers: [...entries.keys()],
    async metadata(issuer) {
      const loaded = load(issuer)
      if (loaded === undefined) return undefined
      return (await loaded).metadata
    },
  }
}
