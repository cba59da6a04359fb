/**
 * The options of {@link createCallproof}, checked once into a frozen {@link CallproofConfig}.
 *
 * Everything a misconfiguration can break is decided here, when the server starts, so that the
 * request path never meets an option it has to second-guess. The verifier's own options
 * (algorithms, token algorithms, windows, replay store, nonce source) are checked by core's
 * `createVerifier`, not a second time here: its errors are re-worded as this function's.
 *
 * @module
 */
import { CallproofError, MemoryReplayStore, createVerifier } from '@callproof/core'
import type {
  ChallengeContext,
  NonceSource,
  ProofAlgorithm,
  ReplayStore,
  Verifier,
} from '@callproof/core'
import type { AuditSink } from './audit.js'
import { DEFAULT_BODY_LIMIT } from './body.js'
import { createIntrospector } from './introspection.js'
import type { IntrospectionOptions } from './introspection.js'
import { createIssuerKeys } from './issuer.js'
import type { IssuerConfig, IssuerKeys, IssuerKeysOptions } from './issuer.js'
import { metadataPathFor, metadataUrlFor, protectedResourceMetadata } from './metadata.js'
import type { ProtectedResourceMetadata } from './metadata.js'
import { isLoopbackHost } from '@callproof/core'
import { defaultOriginPolicy } from './origin.js'
import type { OriginPolicy } from './origin.js'
import { MemorySessionStore } from './sessions.js'
import type { SessionStore } from './sessions.js'
import { adaptiveProofVerification, nodeProofVerification } from './signature.js'
import type { ToolRegistry } from './tools.js'

/** Session handling. */
export interface SessionOptions {
  /**
   * `stateful` (default): `initialize` opens an `Mcp-Session-Id` bound to the caller.
   * `stateless`: no sessions; every request stands alone.
   */
  mode?: 'stateful' | 'stateless'
  /** Where session ownership lives (default a {@link MemorySessionStore}; share it across instances). */
  store?: SessionStore
  /** Lifetime of a session in seconds (default 8 hours). */
  ttlSeconds?: number
  /**
   * In `stateful` mode, answer 400 (`ERR_SESSION_REQUIRED`) to a verified POST other than
   * `initialize` that carries no `Mcp-Session-Id` (MCP Streamable HTTP: a server that requires
   * session ids SHOULD do so). Off by default for now: every request proves its caller, so a
   * request outside any session is safe to serve, and existing clients and test harnesses send
   * sessionless calls. Checked after authentication.
   */
  requireSessionId?: boolean
}

/** Options of {@link createCallproof}. Checked when the middleware is created. */
export interface CallproofOptions {
  /** The resource URI of the MCP endpoint (RFC 8707): the `aud` tokens need and the proofs' `htu`. */
  resource: string
  /** The trusted authorization server(s); keys come from their metadata's `jwks_uri`. */
  issuers: string | IssuerConfig | readonly (string | IssuerConfig)[]
  /** The tools and their policies. */
  tools: ToolRegistry
  /** Proof algorithms accepted (default ES256, EdDSA, Ed25519). */
  algorithms?: readonly ProofAlgorithm[]
  /** Access-token signature algorithms accepted (asymmetric only; core's default when absent). */
  tokenAlgorithms?: readonly string[]
  /** How old a proof's `iat` may be, in seconds (default 60). */
  proofMaxAgeSeconds?: number
  /** How far in the future a proof's `iat` may be, in seconds (default 5). */
  clockSkewSeconds?: number
  /** Replay, approval and one-time state (default a {@link MemoryReplayStore}). */
  replay?: ReplayStore
  /** Server-provided DPoP nonces; when set, every proof must carry the current one. */
  nonce?: NonceSource
  /** Sessions (default stateful with a memory store). */
  sessions?: SessionOptions
  /** Where audit events go (default: nowhere). */
  audit?: AuditSink
  /**
   * At most this many refusals of unverified requests are audited per second (default 100); the
   * next one written counts those left out (`suppressed`). Verified callers' refusals and every
   * allowed call are always written.
   */
  auditAnonymousPerSecond?: number
  /** Largest request body in bytes (default 1 MiB). */
  bodyLimit?: number
  /** Allowed `Origin` values (default the resource's origin; loopback aliases on loopback). */
  allowedOrigins?: readonly string[]
  /** Allowed `Host` values, or `'any'` (default: checked on loopback resources only). */
  allowedHosts?: readonly string[] | 'any'
  /** `scopes_supported` of the metadata (default every scope a tool requires). */
  scopesSupported?: readonly string[]
  /** Key fetching: cooldown, cache age, timeouts. */
  keys?: IssuerKeysOptions
  /** Accept access tokens without `typ: at+jwt` (off; for authorization servers that omit it). */
  allowMissingTyp?: boolean
  /**
   * How proof signatures are checked. `'auto'` (default): synchronously with `node:crypto` (75
   * against 95–160 µs of CPU per ES256 check with Web Crypto on the benchmark machine), and,
   * while the event loop is saturated, a few checks at a time on Web Crypto's thread pool so
   * that other cores share the work ({@link adaptiveProofVerification}). `'node:crypto'`: always
   * on the event loop. `'web-crypto'`: always on the thread pool. docs/performance.md has the
   * numbers.
   */
  proofSignatures?: 'auto' | 'node:crypto' | 'web-crypto'
  /** Answer with JSON (default) instead of an SSE stream. */
  jsonResponse?: boolean
  /** Human-readable `resource_name` of the metadata. */
  resourceName?: string
  /** Milliseconds since the epoch (default `Date.now`). */
  clock?: () => number
  /**
   * Opaque access tokens through RFC 7662 introspection (off by default: JWT access tokens are
   * verified locally). A token that is not a compact JWS is sent to `endpoint`; the answer must
   * be active and carry `cnf.jkt`, and then goes through the same claim checks as a JWT (`iss`
   * one of `issuers`, `aud` containing `resource`, `exp`, …). `issuer` defaults to the only
   * configured issuer. See {@link IntrospectionOptions} for the rest (cache, timeout, auth method).
   */
  introspection?: Omit<IntrospectionOptions, 'issuer' | 'clock'> & { issuer?: string }
}

/** Everything the request path needs, decided once at start-up. Frozen. */
export interface CallproofConfig {
  readonly resource: string
  /** The path of the resource URI: where the endpoint is mounted. */
  readonly resourcePath: string
  readonly tools: ToolRegistry
  readonly verifier: Verifier
  readonly issuerKeys: IssuerKeys
  /** Replay, approval and one-time state (the verifier's store, shared with approvals). */
  readonly replay: ReplayStore
  readonly nonce: NonceSource | undefined
  readonly sessions: {
    readonly mode: 'stateful' | 'stateless'
    readonly store: SessionStore
    readonly ttlSeconds: number
    readonly requireSessionId: boolean
  }
  readonly audit: AuditSink | undefined
  readonly auditAnonymousPerSecond: number
  readonly bodyLimit: number
  readonly originPolicy: OriginPolicy
  readonly clock: () => number
  readonly jsonResponse: boolean
  /** What every challenge names: the metadata URL and the accepted proof algorithms. */
  readonly challenge: ChallengeContext
  readonly metadata: ProtectedResourceMetadata
  readonly metadataPath: string
  readonly metadataUrl: string
}

const DEFAULT_ALGORITHMS: readonly ProofAlgorithm[] = ['ES256', 'EdDSA', 'Ed25519']
const DEFAULT_SESSION_TTL_SECONDS = 8 * 3600

function invalid(message: string, cause?: unknown): CallproofError {
  return new CallproofError(
    'ERR_INVALID_OPTIONS',
    `createCallproof: ${message}`,
    cause !== undefined ? { cause } : undefined,
  )
}

/**
 * Checks `options` and builds what they describe (issuer keys, verifier, metadata). Throws a
 * `CallproofError` `ERR_INVALID_OPTIONS` naming the first problem.
 */
export function configure(options: CallproofOptions): CallproofConfig {
  if (typeof options !== 'object' || options === null) throw invalid('options are required')
  const resource = checkResource(options.resource)
  const issuers = checkIssuers(options.issuers)

  // Duck-typed: two copies of this package (a bundler, a linked checkout) must still agree.
  if (typeof (options.tools as Partial<ToolRegistry> | undefined)?.policyOf !== 'function') {
    throw invalid('tools must be a ToolRegistry (createToolRegistry)')
  }
  // The metadata advertises these, so an empty list is a server no client could call.
  const algorithms = options.algorithms ?? DEFAULT_ALGORITHMS
  if (Array.isArray(algorithms) && algorithms.length === 0) {
    throw invalid('algorithms must name at least one proof algorithm')
  }
  const signatures = options.proofSignatures
  if (
    signatures !== undefined &&
    signatures !== 'auto' &&
    signatures !== 'node:crypto' &&
    signatures !== 'web-crypto'
  ) {
    throw invalid(
      `proofSignatures must be 'node:crypto' or 'web-crypto' (or 'auto', the default), got ${JSON.stringify(signatures)}`,
    )
  }
  const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT
  if (!Number.isSafeInteger(bodyLimit) || bodyLimit < 1) {
    throw invalid(`bodyLimit must be a positive integer number of bytes, got ${String(bodyLimit)}`)
  }
  const sessions = checkSessions(options.sessions)
  if (options.audit !== undefined && typeof options.audit?.write !== 'function') {
    throw invalid('audit must be an AuditSink (an object with write(event))')
  }
  const auditAnonymousPerSecond = options.auditAnonymousPerSecond ?? 100
  if (!Number.isSafeInteger(auditAnonymousPerSecond) || auditAnonymousPerSecond < 1) {
    throw invalid(
      `auditAnonymousPerSecond must be a positive integer, got ${String(auditAnonymousPerSecond)}`,
    )
  }
  const originPolicy = checkOriginPolicy(options, resource)
  const clock = options.clock ?? Date.now
  const replay = options.replay ?? new MemoryReplayStore()

  const issuerKeys = createIssuerKeys(issuers, options.keys)
  const introspector = introspectorFor(options, issuerKeys.issuers, clock)
  let verifier: Verifier
  try {
    verifier = createVerifier({
      resource,
      issuers: issuerKeys.issuers,
      keys: issuerKeys.getKey,
      algorithms,
      replay,
      clock,
      ...(options.tokenAlgorithms !== undefined && { tokenAlgorithms: options.tokenAlgorithms }),
      ...(options.proofMaxAgeSeconds !== undefined && {
        proofMaxAgeSeconds: options.proofMaxAgeSeconds,
      }),
      ...(options.clockSkewSeconds !== undefined && { clockSkewSeconds: options.clockSkewSeconds }),
      ...(signatures === 'node:crypto' && { verifySignature: nodeProofVerification }),
      ...((signatures ?? 'auto') === 'auto' && { verifySignature: adaptiveProofVerification() }),
      ...(options.nonce !== undefined && { nonce: options.nonce }),
      ...(options.allowMissingTyp === true && { allowMissingTyp: true }),
      ...(introspector !== undefined && {
        opaqueTokens: (token: string) => introspector.introspect(token, resource),
      }),
    })
  } catch (error) {
    // One voice for every option: the caller called createCallproof, not createVerifier.
    if (error instanceof CallproofError && error.code === 'ERR_INVALID_OPTIONS') {
      throw invalid(error.message.replace(/^createVerifier: /, ''), error)
    }
    throw error
  }

  const metadataUrl = metadataUrlFor(resource)
  return Object.freeze({
    resource,
    resourcePath: new URL(resource).pathname,
    tools: options.tools,
    verifier,
    issuerKeys,
    replay,
    nonce: options.nonce,
    sessions,
    audit: options.audit,
    auditAnonymousPerSecond,
    bodyLimit,
    originPolicy,
    clock,
    jsonResponse: options.jsonResponse ?? true,
    challenge: Object.freeze({ resourceMetadata: metadataUrl, algs: algorithms }),
    metadata: protectedResourceMetadata({
      resource,
      authorizationServers: issuerKeys.issuers,
      scopesSupported: options.scopesSupported ?? options.tools.scopes(),
      algorithms,
      ...(options.resourceName !== undefined && { resourceName: options.resourceName }),
    }),
    metadataPath: metadataPathFor(resource),
    metadataUrl,
  })
}

function checkResource(value: unknown): string {
  let url: URL
  try {
    url = new URL(value as string)
  } catch {
    throw invalid(`resource ${JSON.stringify(value)} is not an absolute URL`)
  }
  const text = value as string
  if (url.search !== '' || url.hash !== '' || text.includes('#')) {
    throw invalid(`resource ${text} must not have a query or fragment (RFC 8707 §2)`)
  }
  // A token for a plain-http resource travels in the clear, except over loopback.
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
    throw invalid(`resource ${text} must use https (http is allowed on loopback only)`)
  }
  return url.href
}

function checkIssuers(value: CallproofOptions['issuers']): IssuerConfig[] {
  const raw = (Array.isArray(value) ? value : [value]) as readonly (string | IssuerConfig)[]
  if (raw.length === 0) throw invalid('at least one trusted issuer is required')
  return raw.map((entry) => {
    const issuer = typeof entry === 'string' ? { issuer: entry } : entry
    if (typeof issuer?.issuer !== 'string') throw invalid('each issuer needs an issuer URL')
    return issuer
  })
}

function checkSessions(options: SessionOptions | undefined): CallproofConfig['sessions'] {
  const mode = options?.mode ?? 'stateful'
  if (mode !== 'stateful' && mode !== 'stateless') {
    throw invalid(`sessions.mode must be 'stateful' or 'stateless', got ${JSON.stringify(mode)}`)
  }
  const store = options?.store ?? new MemorySessionStore()
  for (const method of ['create', 'owner', 'delete'] as const) {
    if (typeof store[method] !== 'function')
      throw invalid(`sessions.store must implement ${method}`)
  }
  const ttlSeconds = options?.ttlSeconds ?? DEFAULT_SESSION_TTL_SECONDS
  if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 1) {
    throw invalid(`sessions.ttlSeconds must be a positive integer, got ${String(ttlSeconds)}`)
  }
  const requireSessionId = options?.requireSessionId ?? false
  if (typeof requireSessionId !== 'boolean') {
    throw invalid('sessions.requireSessionId must be a boolean')
  }
  if (requireSessionId && mode !== 'stateful') {
    throw invalid("sessions.requireSessionId needs sessions.mode 'stateful'")
  }
  return Object.freeze({ mode, store, ttlSeconds, requireSessionId })
}

function checkOriginPolicy(options: CallproofOptions, resource: string): OriginPolicy {
  if (options.allowedOrigins !== undefined) {
    if (!Array.isArray(options.allowedOrigins)) throw invalid('allowedOrigins must be an array')
    for (const origin of options.allowedOrigins as unknown[]) {
      // An origin is scheme://host[:port] and nothing else; a path here would never match.
      if (
        typeof origin !== 'string' ||
        !URL.canParse(origin) ||
        new URL(origin).origin !== origin
      ) {
        throw invalid(
          `allowedOrigins entry ${JSON.stringify(origin)} is not an origin (scheme://host[:port])`,
        )
      }
    }
  }
  const hosts = options.allowedHosts
  if (hosts !== undefined && hosts !== 'any') {
    if (!Array.isArray(hosts)) throw invalid("allowedHosts must be an array or 'any'")
    for (const host of hosts as unknown[]) {
      if (typeof host !== 'string' || host === '' || /[\s/]/.test(host)) {
        throw invalid(`allowedHosts entry ${JSON.stringify(host)} is not a host[:port]`)
      }
    }
  }
  const defaults = defaultOriginPolicy(resource)
  const allowedHosts =
    hosts === 'any'
      ? undefined
      : ((hosts as readonly string[] | undefined) ?? defaults.allowedHosts)
  return Object.freeze({
    allowedOrigins: options.allowedOrigins ?? defaults.allowedOrigins,
    ...(allowedHosts !== undefined && { allowedHosts }),
  })
}

/** The RFC 7662 client of the `introspection` option, created (and so validated) at start-up. */
function introspectorFor(
  options: CallproofOptions,
  issuers: readonly string[],
  clock: () => number,
): ReturnType<typeof createIntrospector> | undefined {
  const introspection = options.introspection
  if (introspection === undefined) return undefined
  if (typeof introspection !== 'object' || introspection === null) {
    throw invalid('introspection must be an object { endpoint, clientId, clientSecret }')
  }
  const issuer = introspection.issuer ?? (issuers.length === 1 ? issuers[0] : undefined)
  if (issuer === undefined) {
    throw invalid('introspection.issuer must name one of the issuers when several are trusted')
  }
  // Its answers are checked against `issuers` like a JWT's `iss`: an endpoint of an issuer we do
  // not trust must not be able to vouch for tokens.
  if (!issuers.includes(issuer)) {
    throw invalid(`introspection.issuer ${issuer} is not one of the trusted issuers`)
  }
  try {
    return createIntrospector({ ...introspection, issuer, clock })
  } catch (error) {
    if (error instanceof CallproofError) throw invalid(`introspection: ${error.message}`, error)
    throw error
  }
}
