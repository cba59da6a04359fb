/**
 * The request pipeline: every MCP request proves who is calling, and every tool call is checked
 * against its tool's policy, before the MCP SDK sees it. Framework-neutral: a `Request` in, a
 * `Response` out (`middleware.ts` adapts it to Hono).
 *
 * The steps, top to bottom (the order matters; each step says why it is where it is):
 *
 * 1. Origin/Host (DNS rebinding) — before anything, a browser tricked into calling us gets 403.
 * 2. HTTP method — anything but POST, GET and DELETE gets 405.
 * 3. Body: one bounded read (413), ONE parse — a batch or malformed body gets 400 before any
 *    credential check (the argument digest, whose cost grows with the body, waits for a valid
 *    token).
 * 4. Verifier (core): scheme → token → proof → htm/htu → iat → ath → jkt → nonce → binding of the
 *    proof to this parsed message → replay.
 * 5. Session — a session of another caller answers 404, like an unknown one; with
 *    `requireSessionId`, a POST other than initialize without a session id answers 400.
 * 6. What the SDK's transport would refuse (406 `Accept`, 415 `Content-Type`, 400 protocol
 *    version, a request sent as a notification), then the policy of the primitive called
 *    (tools/call, prompts/get, resources/read and subscriptions, completion/complete) — scopes,
 *    acr/max_age, callers, per-call approval (tools only); a one-time approval is consumed only
 *    after everything else passed, so a call that is refused, or would not run, does not burn it.
 *    First of all, a call whose proof carries no `mcp` claim (let past step 4 only when some
 *    primitive declares `binding: 'optional'`) is refused with ERR_BINDING_REQUIRED unless what
 *    it calls accepts unbound proofs.
 * 7. Audit — no audit, no action: the `allowed` event is written before anything runs.
 * 8. The MCP SDK runs the SAME parsed message, with the verified caller in `authInfo`; a GET
 *    opens the standalone stream of the caller's own session, a DELETE ends the session.
 *
 * Every refusal is a `CallproofError` thrown by its step and answered in one place
 * ({@link refusal}) by core's `toResponse`, which builds every challenge.
 *
 * @module
 */
import {
  ApprovalRequiredError,
  CallproofError,
  accessTokenHash,
  bindingShape,
  canEverBeGranted,
  evaluatePolicy,
  toResponse,
} from '@callproof/core'
import type { Caller, McpBinding, VerifiedCall } from '@callproof/core'
import { AUDIT_TEXT_MAX, createRefusalSampler } from './audit.js'
import type { AuditEvent } from './audit.js'
import { readJsonBody } from './body.js'
import type { BodySource } from './body.js'
import type { RequestHeaders } from './node.js'
import type { CallproofConfig } from './options.js'
import { checkOrigin } from './origin.js'
import { JsonRpcRefusal } from './sdk/json-rpc-refusal.js'
import type { McpAnswer, McpSeam } from './sdk/seam.js'
import { newSessionId, sameOwner } from './sessions.js'
import { registrationsOf, targetOf } from './tools.js'

/** The framework-neutral request handler of one MCP endpoint. */
export interface Pipeline {
  /**
   * Answers one request to the MCP endpoint. It never throws: every failure is an answer (a
   * challenge, a JSON-RPC error, or 500 for a bug, logged).
   */
  handle(request: Request, hooks?: PipelineHooks): Promise<Response>
}

/** What an adapter may add to one request's handling. */
export interface PipelineHooks {
  /** Sees the id of the request (audit events, `x-request-id`) before anything else happens. */
  readonly onRequestId?: (requestId: string) => void
  /** Sees the verified call of a request that is about to run (Hono: `c.var.caller`). */
  readonly onVerified?: (call: VerifiedCall) => void
  /**
   * Reads the body from the server's own request object instead of `request.body` (Node's
   * `IncomingMessage` under @hono/node-server: turning its lazy `Request` into a full one, with
   * a web stream for the body and a copy of every header, costs more than the whole policy).
   * It must honour the same limit: undefined when the body is larger.
   */
  readonly body?: BodySource
  /** Reads the headers from the server's own request object likewise (Node: `nodeHeaders`). */
  readonly headers?: RequestHeaders
}

/** Ids we issue are 43 characters; anything much longer is not ours and is not looked up. */
const MAX_SESSION_ID_LENGTH = 256
const METHODS = new Set(['POST', 'GET', 'DELETE'])

type Facts = { -readonly [K in keyof AuditEvent]?: AuditEvent[K] } & { [FULL_TOOL]?: string }

/**
 * Builds the pipeline of a checked configuration over an MCP SDK seam.
 *
 * @example
 * ```ts
 * const config = configure(options)
 * const pipeline = createPipeline(config, createSdkV1Seam(config.tools, config))
 * const response = await pipeline.handle(request)
 * ```
 */
export function createPipeline(config: CallproofConfig, mcp: McpSeam): Pipeline {
  const { resource, verifier, replay, nonce, sessions, audit, clock, challenge } = config
  const anonymous = createRefusalSampler({ perSecond: config.auditAnonymousPerSecond, clock })

  async function handle(request: Request, hooks?: PipelineHooks): Promise<Response> {
    const requestId = crypto.randomUUID()
    hooks?.onRequestId?.(requestId)
    const facts: Facts = { requestId, httpMethod: request.method }
    const headers = hooks?.headers ?? request.headers
    let opened: string | undefined
    let response: Response | McpAnswer
    try {
      // 1. DNS rebinding: refuse a browser on a foreign origin before doing any work for it.
      const originProblem = checkOrigin({ url: request.url, headers }, config.originPolicy)
      if (originProblem !== undefined) {
        throw new CallproofError('ERR_ORIGIN_NOT_ALLOWED', originProblem)
      }

      // 2. Only the methods of the Streamable HTTP transport.
      if (!METHODS.has(request.method)) {
        await record({ ...facts, decision: 'refused', reason: 'method_not_allowed', status: 405 })
        return await finish(methodNotAllowed(), requestId)
      }

      // 3. One bounded read, one parse: the message checked is the message executed. Only shape
      // checks whose cost does not grow with the arguments happen before credentials (batch,
      // non-object, not JSON-RPC, malformed for its method → 400). The argument digest is
      // computed once, by the verifier, only for a valid token, and reaches the audit facts
      // through `onBinding`: an anonymous sender cannot make us digest its body.
      const message =
        request.method === 'POST'
          ? await readJsonBody(request, config.bodyLimit, { ...hooks, headers })
          : undefined
      if (message !== undefined) describe(facts, bindingShape(message))

      // 4. Who is calling, proven for this very message.
      const call = await verifier.verify({
        method: request.method,
        url: resource,
        headers,
        ...(message !== undefined && {
          message,
          onBinding: (binding: McpBinding) => describe(facts, binding),
          // Whether the proof needed the `mcp` claim depends on the policy of what the message
          // calls: decided in step 6 (`requireBinding`), never here.
          allowUnbound: config.tools.acceptsUnboundProofs(),
        }),
      })
      identify(facts, call.caller)

      // 5. A session belongs to the caller that opened it.
      const sessionId = await checkSession(request, headers, message, call.caller)

      // 6. What the transport would refuse is refused first, before anything is spent on the
      // call: a one-time approval consumed, or an `allowed` event written, for a call that then
      // never runs would be a lie in the audit and a loss for the user. Then the policy of what
      // is called, for this caller and these arguments.
      if (message !== undefined) {
        const asked = mcp.refusal(request, headers, message, call)
        const refused =
          (asked instanceof Promise ? await asked : asked) ?? notificationRefusal(message)
        if (refused !== undefined) throw refused
      }
      const decision = await decide(message, call, sessionId)
      if (decision.approvalId !== undefined) facts.approvalId = decision.approvalId
      if (decision.uses !== undefined) facts.uses = [...decision.uses]

      // An initialize opens its session now, before the audit says `allowed`: a caller over its
      // session quota is refused (429) like any other refusal, not allowed and then refused.
      if (sessions.mode === 'stateful' && request.method === 'POST' && isInitialize(message)) {
        opened = await openSession(call.caller)
      }

      // 7. No audit, no action: the event is written before anything happens on its behalf.
      await record({ ...facts, decision: 'allowed', reason: decision.reason }, true)
      hooks?.onVerified?.(call)

      // 8. The SDK executes the very message that was verified.
      if (request.method === 'GET') {
        // A verified GET on the caller's own session (step 5) opens that session's standalone
        // stream. Without a session there is nothing to attach it to: MCP lets a server answer
        // 405 here.
        response =
          sessions.mode === 'stateful' && sessionId !== null
            ? mcp.openStream(
                call.caller,
                sessionId,
                headers.get('last-event-id'),
                call.acceptedUntil,
              )
            : methodNotAllowed()
      } else if (request.method === 'DELETE') {
        response = await closeSession(sessionId, call.caller)
      } else {
        response = await mcp.execute({
          request,
          headers,
          call,
          accessToken: accessTokenOf(headers),
          now: clock(),
        })
      }
    } catch (error) {
      response = await refusal(error, facts)
    }
    return finish(response, requestId, opened)
  }

  /**
   * Step 5. With `requireSessionId`, every POST after `initialize` must name its session (MCP
   * Streamable HTTP: a server that requires one SHOULD answer 400). Checked only after the
   * caller is verified, so the answer tells an anonymous sender nothing about sessions. Without
   * it, a request with no session id is served: every request proves its caller, so the session
   * only steers which session a request joins, it never authorizes anything. A session of
   * another caller answers exactly like an unknown one (404), so that it reveals nothing.
   */
  async function checkSession(
    request: Request,
    headers: RequestHeaders,
    message: unknown,
    caller: Caller,
  ): Promise<string | null> {
    const sessionId = headers.get('mcp-session-id')
    if (
      sessions.requireSessionId &&
      request.method === 'POST' &&
      sessionId === null &&
      !isInitialize(message) &&
      mcp.sessionless?.(request, message) !== true
    ) {
      throw new CallproofError(
        'ERR_SESSION_REQUIRED',
        'this server uses sessions: send the Mcp-Session-Id that initialize returned',
      )
    }
    if (sessions.mode === 'stateful' && sessionId !== null && !isInitialize(message)) {
      const owner =
        sessionId.length > MAX_SESSION_ID_LENGTH
          ? undefined
          : await storeCall(() => sessions.store.owner(sessionId))
      if (owner === undefined || !sameOwner(owner, caller)) {
        throw new CallproofError('ERR_SESSION_NOT_FOUND', 'no such session for this caller')
      }
    }
    return sessionId
  }

  /**
   * Step 6: the policy decision of a call to a primitive (`tools/call`, `prompts/get`,
   * `resources/read` and subscriptions by the URI's resource, `completion/complete` by the
   * prompt or resource its `ref` names: tools.ts `targetOf`); anything else is allowed once
   * verified; an answer to a server request is admitted by the seam. Returns the reason and the
   * id of the one-time approval it consumed, if any (only tools have approvals: registration
   * refuses them elsewhere).
   */
  async function decide(
    message: unknown,
    call: VerifiedCall,
    sessionId: string | null,
  ): Promise<{
    reason: 'allowed' | 'public' | 'answer_dropped'
    approvalId?: string
    uses?: readonly string[]
  }> {
    // An answer to a server request (sampling, elicitation, roots): only the caller and session
    // the request was sent to may answer it, once (sdk/v1.ts rule 5); any other answer is
    // accepted and delivered nowhere, and the audit says so.
    if (isAnswer(message)) {
      // An answer steers what the server does next (a sampling result, an elicitation): never
      // on an unbound proof.
      if (call.unbound === true) throw bindingRequired('an answer to a server request')
      return {
        reason: mcp.admitAnswer(message, call.caller, sessionId) ? 'allowed' : 'answer_dropped',
      }
    }
    const target = targetOf(config.tools, message)
    // A message that calls no primitive (initialize, ping, listings, notifications) runs nothing
    // a policy governs: on a server that accepts unbound proofs at all it accepts them too, or
    // a standard DPoP client could never reach the tools that accept them.
    if (target === undefined) return { reason: 'allowed' }
    // Checked after the final refusals (no policy, unknown, `callers` excludes the caller), which
    // evaluatePolicy answers alike so that nobody learns which tools exist, and before the rest:
    // a refusal for scope or login strength would send the client through a step-up that cannot
    // help it, since its proof would still be unbound.
    if (
      call.unbound === true &&
      target.policy?.binding !== 'optional' &&
      canEverBeGranted(target.policy, call.caller)
    ) {
      const what =
        target.kind === 'resource' ? 'the resource' : `the ${target.kind} ${cut(target.name)}`
      throw bindingRequired(what)
    }
    const tool = target.name
    const argsDigest =
      call.binding !== undefined && 'args' in call.binding ? call.binding.args : undefined
    const decision = evaluatePolicy(target.policy, {
      caller: call.caller,
      tool,
      kind: target.kind,
      argsDigest: argsDigest ?? '',
      resource,
      authorizationDetails: call.token.claims.authorization_details,
      now: clock(),
      // Until the verifier stops accepting the token (exp + tolerance), not just until exp: an
      // approval forgotten earlier could be used again by a token that still passes.
      tokenExpiresAt: call.acceptedUntil,
    })
    if (!decision.allow) throw decision.error
    const declared =
      target.kind === 'tool'
        ? registrationsOf(config.tools).entries.get(tool)?.config.downstream
        : undefined
    const uses = declared !== undefined && declared.length > 0 ? { uses: declared } : {}
    if (decision.approval === undefined) return { reason: decision.reason, ...uses }
    // Consumed last: a call refused for any other reason must not burn the user's approval.
    const { tokenId, expiresAt } = decision.approval
    const first = await storeCall(() =>
      replay.consume(`approval:${tokenId}`, expiresAt, call.caller),
    )
    if (!first) {
      throw new ApprovalRequiredError(
        [{ type: 'mcp_tool_call', resource, tool, args: argsDigest ?? '' }],
        undefined,
        { code: 'ERR_APPROVAL_USED' },
      )
    }
    return { reason: decision.reason, approvalId: tokenId, ...uses }
  }

  async function openSession(caller: Caller): Promise<string> {
    const id = newSessionId()
    const owner = { sub: caller.sub, clientId: caller.clientId, jkt: caller.jkt }
    await storeCall(() => sessions.store.create(id, owner, sessions.ttlSeconds))
    return id
  }

  async function closeSession(sessionId: string | null, caller: Caller): Promise<Response> {
    if (sessions.mode !== 'stateful' || sessionId === null) return methodNotAllowed()
    await storeCall(() => sessions.store.delete(sessionId))
    // What the seam keeps for the session (its stream, subscriptions, logging level) ends too.
    mcp.endSession(caller, sessionId)
    return new Response(null, { status: 200 })
  }

  /** The one place a refusal becomes an answer (and an audit event). */
  async function refusal(error: unknown, facts: Facts): Promise<Response> {
    // A seam's protocol refusal is answered the way its SDK answers it (sdk/json-rpc-refusal.ts).
    const response =
      error instanceof JsonRpcRefusal ? error.toResponse() : toResponse(error, challenge)
    const code = error instanceof CallproofError ? error.code : 'ERR_INTERNAL'
    if (!(error instanceof CallproofError)) console.error('callproof: unexpected error', error)
    await record({ ...facts, decision: 'refused', reason: code, status: response.status })
    return response
  }

  /**
   * Writes an audit event. A sink that fails on an `allowed` event refuses the call (no audit,
   * no call); on a refusal the answer is already decided and stands.
   */
  async function record(event: Facts, mustSucceed = false): Promise<void> {
    if (audit === undefined) return
    // A flood of unverified requests is sampled; what a verified caller did is always written.
    const verified = event.sub !== undefined
    if (!verified && !anonymous.admit()) return
    const { [FULL_TOOL]: longTool, ...facts } = event
    const full = {
      time: new Date(clock()).toISOString(),
      requestId: '',
      ...facts,
      ...(longTool !== undefined && { toolDigest: await accessTokenHash(longTool) }),
      ...(!verified && anonymous.take()),
    } as AuditEvent
    try {
      await audit.write(full)
    } catch (cause) {
      if (mustSucceed) {
        throw new CallproofError('ERR_STORE_UNAVAILABLE', 'the audit sink failed', { cause })
      }
    }
  }

  /** The answer with this pipeline's own headers (request id, a new session, the nonce). */
  async function finish(
    response: Response | McpAnswer,
    requestId: string,
    sessionId?: string,
  ): Promise<Response> {
    const own: Record<string, string> = { 'x-request-id': requestId }
    if (sessionId !== undefined && response.status < 300) own['mcp-session-id'] = sessionId
    if (nonce !== undefined && !hasHeader(response, 'dpop-nonce')) {
      // A nonce source that cannot answer costs the client one use_dpop_nonce round trip later;
      // it must not turn an answer already decided into a 500.
      try {
        own['dpop-nonce'] = await nonce.current()
      } catch (error) {
        console.error('callproof: the nonce source failed', error)
      }
    }
    if (!isSeamAnswer(response)) return withOwnHeaders(response, own)
    return new Response(response.body, {
      status: response.status,
      headers: { ...response.headers, ...own },
    })
  }

  return { handle }
}

/** The refusal of an unbound proof for something that requires the binding (docs/protocol.md §6.3). */
function bindingRequired(what: string): CallproofError {
  return new CallproofError(
    'ERR_BINDING_REQUIRED',
    `${what} requires a call-bound proof: add the mcp claim that binds the proof to this message (docs/protocol.md section 6.3)`,
  )
}

/** What the binding says the message is, for the audit. */
function describe(facts: Facts, binding: McpBinding): void {
  if ('method' in binding) {
    facts.method = cut(binding.method)
    if (binding.method === 'tools/call' && binding.name !== undefined) {
      facts.tool = cut(binding.name)
      if (binding.name.length > AUDIT_TEXT_MAX) {
        // Anyone can send a name; only its first characters, its length and its digest are kept.
        facts.toolLength = binding.name.length
        facts[FULL_TOOL] = binding.name
      }
    }
    if (binding.args !== undefined) facts.argsDigest = binding.args
  }
}

/** Where a cut tool name waits for its digest (a symbol: never serialized with the event). */
const FULL_TOOL = Symbol('full tool name')

const cut = (text: string): string =>
  text.length > AUDIT_TEXT_MAX ? `${text.slice(0, AUDIT_TEXT_MAX)}…` : text

/** Who called, once verified (never before: a forged token must not frame someone else). */
function identify(facts: Facts, caller: Caller): void {
  facts.sub = caller.sub
  facts.clientId = caller.clientId
  facts.jkt = caller.jkt
  facts.tokenId = caller.tokenId
}

/**
 * A JSON-RPC notification (no `id`) whose method is a request of MCP's (`tools/call`, …): the SDK
 * would answer 202 and run nothing, after the policy and the audit had let it through. Every
 * notification MCP defines is named `notifications/…`.
 */
function notificationRefusal(message: unknown): CallproofError | undefined {
  const m = message as { id?: unknown; method?: unknown }
  if (typeof m.method !== 'string' || 'id' in m || m.method.startsWith('notifications/')) {
    return undefined
  }
  return new CallproofError(
    'ERR_MALFORMED_BODY',
    `${m.method.slice(0, 64)} is a request: it needs an id (a notification runs nothing)`,
  )
}

function isInitialize(message: unknown): boolean {
  return (message as { method?: unknown } | undefined)?.method === 'initialize'
}

/** A JSON-RPC response or error (bindingShape has checked the shape: an id and no method). */
function isAnswer(message: unknown): message is { id: string | number } {
  const m = message as Record<string, unknown> | undefined
  return m !== undefined && !('method' in m) && ('result' in m || 'error' in m)
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
function accessTokenOf(headers: RequestHeaders): string {
  return (headers.get('authorization') ?? '').trim().replace(/^DPoP +/i, '')
}

/**
 * A copy of `response` whose headers this pipeline may add to. A complete answer (JSON, or no
 * body) is copied with its body as a string: a server adapter such as @hono/node-server writes a
 * string directly, while a stream body goes through Web Streams at several times the cost. (The
 * answer's own headers must not be changed in place: @hono/node-server's lightweight `Response`
 * rebuilds itself from its original headers when its body is read.) A stream (SSE) stays a stream.
 */
async function withOwnHeaders(
  response: Response,
  own: Readonly<Record<string, string>>,
): Promise<Response> {
  const headers = new Headers(response.headers)
  for (const [name, value] of Object.entries(own)) headers.set(name, value)
  const init = { status: response.status, statusText: response.statusText, headers }
  if (NULL_BODY_STATUSES.has(response.status)) return new Response(null, init)
  if (response.headers.get('content-type')?.startsWith('text/event-stream') === true) {
    return new Response(response.body, init)
  }
  return new Response(await response.text(), init)
}

/**
 * A seam's own complete answer: a plain object (a `Response` may come from another realm or be a
 * server adapter's subclass, so `instanceof` cannot tell them apart).
 */
function isSeamAnswer(response: Response | McpAnswer): response is McpAnswer {
  return Object.getPrototypeOf(response) === Object.prototype
}

function hasHeader(response: Response | McpAnswer, name: string): boolean {
  return isSeamAnswer(response)
    ? Object.keys(response.headers).some((key) => key.toLowerCase() === name)
    : response.headers.has(name)
}

/** Statuses whose answers have no body (Fetch: a null body status). */
const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304])

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
