/**
 * The callproof middleware: every MCP request proves who is calling, and every tool call is
 * checked against its tool's policy, before the MCP SDK sees it.
 *
 * The request's path, top to bottom (the order matters; each step says why it is where it is):
 *
 * 1. Origin/Host (DNS rebinding) — before anything, a browser tricked into calling us gets 403.
 * 2. Body size limit (413) — before parsing, so a huge body costs nothing.
 * 3. Parse the JSON body ONCE — a batch or malformed body gets 400 before any credential check
 *    (the argument digest, whose cost grows with the body, waits for a valid token).
 * 4. Verifier (core): scheme → token → proof → htm/htu → iat → ath → jkt → nonce → binding of the
 *    proof to this parsed message → replay.
 * 5. Sessions — a session of another caller answers 404, like an unknown one; with
 *    `requireSessionId`, a POST other than initialize without a session id answers 400.
 * 6. Tool policy (tools/call) — scopes, acr/max_age, callers, per-call approval; a one-time
 *    approval is consumed only after everything else passed, so a refused call does not burn it.
 * 7. The MCP SDK transport runs the SAME parsed message, with the verified caller in `authInfo`.
 *
 * Every refusal is answered by core's `toResponse` (one place builds challenges) and audited.
 *
 * @module
 */
import { createMiddleware } from 'hono/factory'
import type { Context, Env, Hono, MiddlewareHandler } from 'hono'
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js'
import {
  ApprovalRequiredError,
  CallproofError,
  DEFAULT_CLOCK_SKEW_SECONDS,
  MemoryReplayStore,
  bindingShape,
  createVerifier,
  evaluatePolicy,
  toResponse,
} from '@callproof/core'
import type {
  Caller,
  ChallengeContext,
  McpBinding,
  NonceSource,
  ProofAlgorithm,
  ReplayStore,
  VerifiedCall,
} from '@callproof/core'
import { DEFAULT_BODY_LIMIT, readJsonBody } from './body.js'
import { createIntrospector } from './introspection.js'
import type { IntrospectionOptions } from './introspection.js'
import { createIssuerKeys } from './issuer.js'
import type { IssuerConfig, IssuerKeys, IssuerKeysOptions } from './issuer.js'
import {
  metadataPathFor,
  metadataResponse,
  metadataUrlFor,
  protectedResourceMetadata,
} from './metadata.js'
import type { ProtectedResourceMetadata } from './metadata.js'
import { checkOrigin, defaultOriginPolicy, isLoopbackHost } from './origin.js'
import type { OriginPolicy } from './origin.js'
import { MemorySessionStore, newSessionId, sameOwner } from './sessions.js'
import type { SessionStore } from './sessions.js'
import { nodeProofVerification } from './signature.js'
import { authInfoFor } from './tools.js'
import type { ToolRegistry } from './tools.js'
import type { AuditEvent, AuditSink } from './audit.js'

/** Hono environment of the callproof middleware: read the verified caller as `c.var.caller`. */
export interface CallproofEnv {
  Variables: {
    /** The verified caller of this request. */
    caller: Caller
    /** The whole verified call (token, proof, binding, parsed message). */
    call: VerifiedCall
    /** The id of this request in audit events and the `x-request-id` header. */
    requestId: string
  }
}

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
   * How proof signatures are checked: `'node:crypto'` (default) synchronously on the event loop,
   * with less CPU per check (75 against 95–160 µs for ES256 on the benchmark machine);
   * `'web-crypto'` on libuv's thread pool, which spreads checks over idle cores of one process at
   * more CPU per check. docs/performance.md has the numbers.
   */
  proofSignatures?: 'node:crypto' | 'web-crypto'
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

/** What {@link createCallproof} returns. */
export interface Callproof {
  /** The middleware for the MCP endpoint. It answers every request itself. */
  readonly middleware: MiddlewareHandler<CallproofEnv>
  /** A handler serving the RFC 9728 document. */
  readonly metadataHandler: (c: Context) => Response
  /** The RFC 9728 document. */
  readonly metadata: ProtectedResourceMetadata
  /** Where the document is served (path-inserted from the resource path). */
  readonly metadataPath: string
  /** The absolute URL challenges name in `resource_metadata`. */
  readonly metadataUrl: string
  /** The resource URI. */
  readonly resource: string
  /** The path of the resource URI (`/mcp`): where to mount the middleware. */
  readonly resourcePath: string
  /** The issuers' keys and metadata. */
  readonly issuerKeys: IssuerKeys
  /** Adds the metadata route and the MCP endpoint to `app`. */
  mount<E extends Env>(app: Hono<E>): void
}

/** Ids we issue are 43 characters; anything much longer is not ours and is not looked up. */
const MAX_SESSION_ID_LENGTH = 256
const DEFAULT_ALGORITHMS: readonly ProofAlgorithm[] = ['ES256', 'EdDSA', 'Ed25519']
const PROOF_ALGORITHMS = new Set<string>(DEFAULT_ALGORITHMS)

/**
 * Creates the callproof middleware. Every option is checked here: a misconfiguration throws a
 * `CallproofError` `ERR_INVALID_OPTIONS` at start-up instead of failing on the first request.
 *
 * @example
 * ```ts
 * const tools = createToolRegistry({ name: 'drive', version: '1.0.0' })
 * tools.register('whoami', { policy: { public: true } }, (extra) => ({
 *   content: [{ type: 'text', text: callerOf(extra).sub }],
 * }))
 * const callproof = createCallproof({
 *   resource: 'http://127.0.0.1:3000/mcp',
 *   issuers: 'http://127.0.0.1:4000',
 *   tools,
 * })
 * const app = new Hono()
 * callproof.mount(app) // GET /.well-known/oauth-protected-resource/mcp + ALL /mcp
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-7
 */
export function createCallproof(options: CallproofOptions): Callproof {
  const config = checkOptions(options)
  const {
    resource,
    tools,
    replay,
    nonce,
    sessionMode,
    sessionStore,
    sessionTtl,
    requireSessionId,
    audit,
    bodyLimit,
    originPolicy,
    clock,
  } = config

  const issuerKeys = createIssuerKeys(config.issuers, options.keys)
  const introspector = introspectorFor(options, issuerKeys.issuers, clock)
  const verifier = createVerifier({
    resource,
    issuers: issuerKeys.issuers,
    keys: issuerKeys.getKey,
    algorithms: config.algorithms,
    ...(options.tokenAlgorithms !== undefined ? { tokenAlgorithms: options.tokenAlgorithms } : {}),
    ...(options.proofMaxAgeSeconds !== undefined
      ? { proofMaxAgeSeconds: options.proofMaxAgeSeconds }
      : {}),
    ...(options.clockSkewSeconds !== undefined
      ? { clockSkewSeconds: options.clockSkewSeconds }
      : {}),
    replay,
    clock,
    ...(options.proofSignatures !== 'web-crypto' && { verifySignature: nodeProofVerification }),
    ...(nonce !== undefined ? { nonce } : {}),
    ...(options.allowMissingTyp === true ? { allowMissingTyp: true } : {}),
    ...(introspector !== undefined
      ? { opaqueTokens: (token: string) => introspector.introspect(token, resource) }
      : {}),
  })

  const metadataPath = metadataPathFor(resource)
  const metadataUrl = metadataUrlFor(resource)
  const metadata = protectedResourceMetadata({
    resource,
    authorizationServers: issuerKeys.issuers,
    scopesSupported: options.scopesSupported ?? tools.scopes(),
    algorithms: config.algorithms,
    ...(options.resourceName !== undefined ? { resourceName: options.resourceName } : {}),
  })
  const challenge: ChallengeContext = { resourceMetadata: metadataUrl, algs: config.algorithms }
  const jsonResponse = options.jsonResponse ?? true

  const middleware = createMiddleware<CallproofEnv>(async (c) => {
    const request = c.req.raw
    const requestId = crypto.randomUUID()
    c.set('requestId', requestId)
    const facts: Mutable<Partial<AuditEvent>> = { requestId, httpMethod: request.method }
    let newSession: string | undefined
    let response: Response
    try {
      // 1. DNS rebinding: refuse a browser on a foreign origin before doing any work for it.
      const originProblem = checkOrigin(request, originPolicy)
      if (originProblem !== undefined) {
        throw new CallproofError('ERR_ORIGIN_NOT_ALLOWED', originProblem)
      }
      if (!['POST', 'GET', 'DELETE'].includes(request.method)) {
        response = methodNotAllowed()
        await record(
          { ...facts, decision: 'refused', reason: 'method_not_allowed', status: 405 },
          false,
        )
      } else {
        // 2 + 3. One bounded read, one parse: the message checked is the message executed.
        // Only shape checks whose cost does not grow with the arguments happen before credentials
        // (batch, non-object, not JSON-RPC, malformed for its method → 400). The argument digest —
        // RFC 8785 canonicalisation and SHA-256 of `params.arguments` — is computed once, by the
        // verifier, only for a valid token, and handed to the audit facts through `onBinding`:
        // an anonymous sender cannot make us digest its body, and a valid call digests it once.
        const message =
          request.method === 'POST' ? await readJsonBody(request, bodyLimit) : undefined
        if (message !== undefined) describe(facts, bindingShape(message))

        // 4. Who is calling, proven for this very message.
        const call = await verifier.verify({
          method: request.method,
          url: resource,
          headers: request.headers,
          ...(message !== undefined
            ? { message, onBinding: (binding: McpBinding) => describe(facts, binding) }
            : {}),
        })
        const caller = call.caller
        Object.assign(facts, {
          sub: caller.sub,
          clientId: caller.clientId,
          jkt: caller.jkt,
          tokenId: caller.tokenId,
        })

        // 5. A session belongs to the caller that opened it; anyone else gets "not found".
        // With `requireSessionId`, every POST after `initialize` must name its session (MCP
        // Streamable HTTP: a server that requires one SHOULD answer 400). Checked only now, after
        // the caller is verified, so the answer tells an anonymous sender nothing about sessions.
        // Without it, a request with no session id is served: every request proves its caller, so
        // the session only steers which session a request joins, it never authorizes anything.
        const sessionId = request.headers.get('mcp-session-id')
        if (
          requireSessionId &&
          request.method === 'POST' &&
          sessionId === null &&
          !isInitialize(message)
        ) {
          throw new CallproofError(
            'ERR_SESSION_REQUIRED',
            'this server uses sessions: send the Mcp-Session-Id that initialize returned',
          )
        }
        if (sessionMode === 'stateful' && sessionId !== null && !isInitialize(message)) {
          const owner =
            sessionId.length > MAX_SESSION_ID_LENGTH
              ? undefined
              : await storeCall(() => sessionStore.owner(sessionId))
          if (owner === undefined || !sameOwner(owner, caller)) {
            throw new CallproofError('ERR_SESSION_NOT_FOUND', 'no such session for this caller')
          }
        }

        // 6. The tool's policy, for this caller and these arguments.
        const decision = await decide(message, call)
        if (decision.approvalId !== undefined) facts.approvalId = decision.approvalId
        // No audit, no action: the event is written before anything happens on its behalf.
        await record({ ...facts, decision: 'allowed', reason: decision.reason }, true)
        c.set('caller', caller)
        c.set('call', call)

        if (request.method === 'GET') {
          // The SDK transport runs per request (see sessions.ts), so there is no standalone
          // stream to attach a GET to; MCP lets a server answer 405 here.
          response = methodNotAllowed()
        } else if (request.method === 'DELETE') {
          if (sessionMode !== 'stateful' || sessionId === null) {
            response = methodNotAllowed()
          } else {
            await storeCall(() => sessionStore.delete(sessionId))
            response = new Response(null, { status: 200 })
          }
        } else {
          if (sessionMode === 'stateful' && isInitialize(message)) {
            newSession = newSessionId()
            const id = newSession
            await storeCall(() =>
              sessionStore.create(
                id,
                { sub: caller.sub, clientId: caller.clientId, jkt: caller.jkt },
                sessionTtl,
              ),
            )
          }
          // 7. The SDK executes the very message that was verified.
          response = await runTransport(request, message, call)
        }
      }
    } catch (error) {
      response = toResponse(error, challenge)
      const code = error instanceof CallproofError ? error.code : 'ERR_INTERNAL'
      if (!(error instanceof CallproofError)) {
        console.error('callproof: unexpected error', error)
      }
      await record({ ...facts, decision: 'refused', reason: code, status: response.status }, false)
    }
    return finish(response, requestId, newSession)
  })

  /** The policy decision of a tool call (anything else is allowed once verified). */
  async function decide(
    message: unknown,
    call: VerifiedCall,
  ): Promise<{ reason: 'allowed' | 'public'; approvalId?: string }> {
    if (!isToolCall(message)) return { reason: 'allowed' }
    const tool = message.params.name
    const argsDigest =
      call.binding !== undefined && 'args' in call.binding ? call.binding.args : undefined
    const decision = evaluatePolicy(tools.policyOf(tool), {
      caller: call.caller,
      tool,
      argsDigest: argsDigest ?? '',
      resource,
      authorizationDetails: call.token.claims.authorization_details,
      now: clock(),
      // Until the verifier stops accepting the token (exp + tolerance), not just until exp: an
      // approval forgotten earlier could be used again by a token that still passes.
      tokenExpiresAt:
        (call.token.claims.exp + (options.clockSkewSeconds ?? DEFAULT_CLOCK_SKEW_SECONDS)) * 1000,
    })
    if (!decision.allow) throw decision.error
    if (decision.approval === undefined) return { reason: decision.reason }
    // Consumed last: a call refused for any other reason must not burn the user's approval.
    const { tokenId, expiresAt } = decision.approval
    const first = await storeCall(() => replay.consume(`approval:${tokenId}`, expiresAt))
    if (!first) {
      throw new ApprovalRequiredError(
        [{ type: 'mcp_tool_call', resource, tool, args: argsDigest ?? '' }],
        undefined,
        { code: 'ERR_APPROVAL_USED' },
      )
    }
    return { reason: decision.reason, approvalId: tokenId }
  }

  async function runTransport(
    request: Request,
    message: unknown,
    call: VerifiedCall,
  ): Promise<Response> {
    // No sessionIdGenerator: the SDK's stateless mode. callproof owns sessions (sessions.ts).
    const transport = new WebStandardStreamableHTTPServerTransport({
      enableJsonResponse: jsonResponse,
    })
    const method = (message as { method?: unknown } | undefined)?.method
    const server = tools.serverFor(call.caller, {
      resource,
      now: clock(),
      ...(typeof method === 'string' ? { method } : {}),
    })
    await server.connect(transport)
    const authInfo = authInfoFor(
      call.caller,
      accessTokenOf(request),
      call.token.claims.exp,
      resource,
    )
    const response = await transport.handleRequest(request, { parsedBody: message, authInfo })
    if (jsonResponse) await server.close()
    return response
  }

  async function record(event: Partial<AuditEvent>, mustSucceed: boolean): Promise<void> {
    if (audit === undefined) return
    const full = { time: new Date(clock()).toISOString(), requestId: '', ...event } as AuditEvent
    try {
      await audit.write(full)
    } catch (cause) {
      // No audit, no call: an allowed call that leaves no trace is refused.
      if (mustSucceed) {
        throw new CallproofError('ERR_STORE_UNAVAILABLE', 'the audit sink failed', { cause })
      }
    }
  }

  async function finish(
    response: Response,
    requestId: string,
    sessionId?: string,
  ): Promise<Response> {
    const out = new Response(response.body, response)
    out.headers.set('x-request-id', requestId)
    if (sessionId !== undefined && out.status < 300) out.headers.set('mcp-session-id', sessionId)
    if (nonce !== undefined && !out.headers.has('dpop-nonce')) {
      // A nonce source that cannot answer costs the client one use_dpop_nonce round trip later;
      // it must not turn an answer already decided into a 500.
      try {
        out.headers.set('dpop-nonce', await nonce.current())
      } catch (error) {
        console.error('callproof: the nonce source failed', error)
      }
    }
    return out
  }

  return {
    middleware,
    metadataHandler: () => metadataResponse(metadata),
    metadata,
    metadataPath,
    metadataUrl,
    resource,
    resourcePath: new URL(resource).pathname,
    issuerKeys,
    mount(app) {
      app.get(metadataPath, () => metadataResponse(metadata))
      app.all(new URL(resource).pathname, middleware as unknown as MiddlewareHandler<Env>)
    },
  }
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

function describe(facts: Mutable<Partial<AuditEvent>>, binding: McpBinding): void {
  if ('method' in binding) {
    facts.method = binding.method
    if (binding.method === 'tools/call' && binding.name !== undefined) facts.tool = binding.name
    if (binding.args !== undefined) facts.argsDigest = binding.args
  }
}

function isInitialize(message: unknown): boolean {
  return (
    typeof message === 'object' &&
    message !== null &&
    (message as { method?: unknown }).method === 'initialize'
  )
}

function isToolCall(
  message: unknown,
): message is { method: 'tools/call'; params: { name: string } } {
  if (typeof message !== 'object' || message === null) return false
  const m = message as { method?: unknown; params?: { name?: unknown } }
  // bindingShape has already refused a tools/call without a string name (400).
  return m.method === 'tools/call' && typeof m.params?.name === 'string'
}

async function storeCall<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation()
  } catch (cause) {
    if (cause instanceof CallproofError) throw cause
    // Fail closed: a store we cannot reach must not turn into "no session checks" or "approval
    // not yet used".
    throw new CallproofError('ERR_STORE_UNAVAILABLE', 'a state store failed', { cause })
  }
}

/** The token of an already verified request (the verifier accepted exactly `DPoP <token>`). */
function accessTokenOf(request: Request): string {
  return (request.headers.get('authorization') ?? '').trim().replace(/^DPoP +/i, '')
}

function methodNotAllowed(): Response {
  return new Response(
    JSON.stringify({
      jsonrpc: '2.0',
      error: { code: -32000, message: 'Method not allowed.' },
      id: null,
    }),
    { status: 405, headers: { allow: 'POST, DELETE', 'content-type': 'application/json' } },
  )
}

interface CheckedOptions {
  resource: string
  issuers: IssuerConfig[]
  tools: ToolRegistry
  algorithms: readonly ProofAlgorithm[]
  replay: ReplayStore
  nonce: NonceSource | undefined
  sessionMode: 'stateful' | 'stateless'
  sessionStore: SessionStore
  sessionTtl: number
  requireSessionId: boolean
  audit: AuditSink | undefined
  bodyLimit: number
  originPolicy: OriginPolicy
  clock: () => number
}

function invalid(message: string): CallproofError {
  return new CallproofError('ERR_INVALID_OPTIONS', `createCallproof: ${message}`)
}

function checkOptions(options: CallproofOptions): CheckedOptions {
  if (typeof options !== 'object' || options === null) throw invalid('options are required')

  let resourceUrl: URL
  try {
    resourceUrl = new URL(options.resource)
  } catch {
    throw invalid(`resource ${JSON.stringify(options.resource)} is not an absolute URL`)
  }
  if (resourceUrl.search !== '' || resourceUrl.hash !== '' || options.resource.includes('#')) {
    throw invalid(`resource ${options.resource} must not have a query or fragment (RFC 8707 §2)`)
  }
  if (
    resourceUrl.protocol !== 'https:' &&
    !(resourceUrl.protocol === 'http:' && isLoopbackHost(resourceUrl.hostname))
  ) {
    throw invalid(`resource ${options.resource} must use https (http is allowed on loopback only)`)
  }
  const resource = resourceUrl.href

  const rawIssuers = Array.isArray(options.issuers) ? options.issuers : [options.issuers]
  if (rawIssuers.length === 0) throw invalid('at least one trusted issuer is required')
  const issuers = (rawIssuers as readonly (string | IssuerConfig)[]).map((entry) => {
    const issuerConfig = typeof entry === 'string' ? { issuer: entry } : entry
    if (typeof issuerConfig?.issuer !== 'string') throw invalid('each issuer needs an issuer URL')
    return issuerConfig
  })

  if (!(options.tools instanceof Object) || typeof options.tools.serverFor !== 'function') {
    throw invalid('tools must be a ToolRegistry (createToolRegistry)')
  }

  const algorithms = options.algorithms ?? DEFAULT_ALGORITHMS
  if (algorithms.length === 0) throw invalid('algorithms must name at least one proof algorithm')
  for (const alg of algorithms) {
    if (!PROOF_ALGORITHMS.has(alg)) {
      throw invalid(
        `proof algorithm ${JSON.stringify(alg)} is not one of ${[...PROOF_ALGORITHMS].join(', ')}`,
      )
    }
  }
  for (const alg of options.tokenAlgorithms ?? []) {
    if (/^(none|HS\d+)$/i.test(alg)) throw invalid(`token algorithm ${alg} is not asymmetric`)
  }

  const signatures = options.proofSignatures
  if (signatures !== undefined && signatures !== 'node:crypto' && signatures !== 'web-crypto') {
    throw invalid(
      `proofSignatures must be 'node:crypto' or 'web-crypto', got ${JSON.stringify(signatures)}`,
    )
  }
  checkSeconds('proofMaxAgeSeconds', options.proofMaxAgeSeconds, 1, 3600)
  checkSeconds('clockSkewSeconds', options.clockSkewSeconds, 0, 300)

  const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT
  if (!Number.isSafeInteger(bodyLimit) || bodyLimit < 1) {
    throw invalid(`bodyLimit must be a positive integer number of bytes, got ${String(bodyLimit)}`)
  }

  const replay = options.replay ?? new MemoryReplayStore()
  if (typeof replay.consume !== 'function')
    throw invalid('replay must implement ReplayStore.consume')

  const nonce = options.nonce
  if (
    nonce !== undefined &&
    (typeof nonce.current !== 'function' || typeof nonce.check !== 'function')
  ) {
    throw invalid('nonce must implement NonceSource (current and check)')
  }

  const sessionMode = options.sessions?.mode ?? 'stateful'
  if (sessionMode !== 'stateful' && sessionMode !== 'stateless') {
    throw invalid(
      `sessions.mode must be 'stateful' or 'stateless', got ${JSON.stringify(sessionMode)}`,
    )
  }
  const sessionStore = options.sessions?.store ?? new MemorySessionStore()
  for (const method of ['create', 'owner', 'delete'] as const) {
    if (typeof sessionStore[method] !== 'function')
      throw invalid(`sessions.store must implement ${method}`)
  }
  const sessionTtl = options.sessions?.ttlSeconds ?? 8 * 3600
  if (!Number.isSafeInteger(sessionTtl) || sessionTtl < 1) {
    throw invalid(`sessions.ttlSeconds must be a positive integer, got ${String(sessionTtl)}`)
  }

  const requireSessionId = options.sessions?.requireSessionId ?? false
  if (typeof requireSessionId !== 'boolean') {
    throw invalid('sessions.requireSessionId must be a boolean')
  }
  if (requireSessionId && sessionMode !== 'stateful') {
    throw invalid("sessions.requireSessionId needs sessions.mode 'stateful'")
  }

  if (options.audit !== undefined && typeof options.audit.write !== 'function') {
    throw invalid('audit must be an AuditSink (an object with write(event))')
  }

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
  if (options.allowedHosts !== undefined && options.allowedHosts !== 'any') {
    if (!Array.isArray(options.allowedHosts))
      throw invalid("allowedHosts must be an array or 'any'")
    for (const host of options.allowedHosts as unknown[]) {
      if (typeof host !== 'string' || host === '' || /[\s/]/.test(host)) {
        throw invalid(`allowedHosts entry ${JSON.stringify(host)} is not a host[:port]`)
      }
    }
  }
  const defaults = defaultOriginPolicy(resource)
  const originPolicy: OriginPolicy = {
    allowedOrigins: options.allowedOrigins ?? defaults.allowedOrigins,
    ...(options.allowedHosts === 'any'
      ? {}
      : options.allowedHosts !== undefined
        ? { allowedHosts: options.allowedHosts }
        : defaults.allowedHosts !== undefined
          ? { allowedHosts: defaults.allowedHosts }
          : {}),
  }

  return {
    resource,
    issuers,
    tools: options.tools,
    algorithms,
    replay,
    nonce,
    sessionMode,
    sessionStore,
    sessionTtl,
    requireSessionId,
    audit: options.audit,
    bodyLimit,
    originPolicy,
    clock: options.clock ?? Date.now,
  }
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
    if (error instanceof CallproofError) throw invalid(`introspection: ${error.message}`)
    throw error
  }
}

function checkSeconds(name: string, value: number | undefined, min: number, max: number): void {
  if (value === undefined) return
  if (!Number.isInteger(value) || value < min || value > max) {
    throw invalid(`${name} must be an integer from ${min} to ${max}, got ${String(value)}`)
  }
}
