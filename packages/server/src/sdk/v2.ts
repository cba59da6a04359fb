/**
 * The seam to the MCP TypeScript SDK v2 (`@modelcontextprotocol/server` 2.x): the one module
 * that builds v2 SDK servers. It serves both revisions the SDK negotiates — 2026-07-28
 * (stateless, the per-request `_meta` envelope) and 2025-11-25 (the SDK's stateless legacy
 * fallback's way) — 2026-07-28 through the SDK's own `createMcpHandler`, which decides how such a
 * request is answered, and 2025-11-25 over the SDK's stateless Streamable HTTP transport.
 *
 * **One server per request, built for its caller.** The v2 SDK serves every request with a fresh
 * server from a factory (it binds a server to one exchange and its revision). The factory here
 * registers the primitives the request's caller may see (tools.ts `listingFor`/`visibleTo`,
 * the same functions the v1 seam lists with), each with its requirements in
 * `_meta['callproof/policy']`, so the SDK's own listings are the caller's listings. What a
 * caller can never be granted is not on its server at all; what it may be granted is decided
 * by the pipeline before the server exists. `resources/read` is answered by our handler with the
 * very lookup the pipeline decided with (tools.ts `resolveResource`). Nothing of one caller
 * outlives its request: the server, its transport and whatever the SDK seeded into it (the
 * client's capabilities from the envelope, the negotiated revision) are dropped with it.
 *
 * **Except on the 2025-11-25 leg with JSON answers** and a registry of tools only (no `setup`
 * hook, not `initialize`): there, as on v1 (v1.ts rules 1–4), servers holding every tool are
 * pooled, each on a transport of callproof's own (direct.ts) that serves one request at a time,
 * and `tools/list` is answered for the request's caller with `listingFor`. Building a server per
 * request cost about 500 µs of CPU per call, more than the whole verification.
 *
 * **2026-07-28 semantics** (docs/protocol.md §20.4):
 *
 * 1. Stateless: every request proves its caller (the pipeline), and no session is needed
 *    (`sessionless`). What spans requests is keyed by the caller: only the continuations of
 *    rule 3, which carry the caller in their seal rather than in a table.
 * 2. `Mcp-Method` and `Mcp-Name` are checked against the body and the proof's binding before
 *    anything is spent (mcp-headers.ts), and the SDK's own classification of the request (its
 *    envelope, revision and header ladder) runs before the policy step as well, so a request the
 *    SDK would refuse never consumes an approval or writes `allowed`.
 * 3. Multi Round-Trip Requests: every `InputRequiredResult` leaves with a `requestState` sealed to
 *    the caller and the call (continuations.ts); a retry is admitted only with a seal that opens
 *    for this caller and this call, and the tool gets its own state back.
 *
 * **The 2025-11-25 leg** is served statelessly, as the SDK's legacy fallback does (with
 * `jsonResponse` honoured, which the fallback ignores): `initialize` works (callproof
 * opens its caller-bound session as on v1), every request is served on its own. A request a
 * server sends to the client on a streamed answer (sampling, elicitation, roots) leaves with an
 * id of ours and its answer reaches that server only from the same caller and session, once
 * (server-requests.ts, v1.ts rule 5). What else a session held on v1 (subscriptions, the
 * standalone stream, a session's logging level) is not available: `openStream` answers 405
 * (docs/guides/sdk-v1-and-v2.md).
 *
 * @module
 */
import {
  McpServer,
  ProtocolError,
  ProtocolErrorCode,
  ResourceTemplate,
  SUPPORTED_PROTOCOL_VERSIONS,
  UnsupportedProtocolVersionError,
  WebStandardStreamableHTTPServerTransport,
  classifyInboundRequest,
  createMcpHandler,
  isJsonContentType,
} from '@modelcontextprotocol/server'
import type {
  AuthInfo,
  JSONRPCMessage,
  McpRequestContext,
  ServerContext,
  Tool,
  Transport,
} from '@modelcontextprotocol/server'
import { DefaultJsonSchemaValidator } from '@modelcontextprotocol/server/_shims'
import { CallproofError } from '@callproof/core'
import type { Caller, McpBinding, VerifiedCall } from '@callproof/core'
import {
  authInfoFor,
  isVisible,
  listingFor,
  registrationsOf,
  resolveResource,
  visibleTo,
  POLICY_META_KEY,
} from '../tools.js'
import type { ToolRegistry } from '../tools.js'
import { createContinuations } from './continuations.js'
import type { ContinuationOptions } from './continuations.js'
import {
  FIRST_MODERN_REVISION,
  envelopeVersionOf,
  headerRefusal,
  isModernRequest,
} from './mcp-headers.js'
import { JsonRpcRefusal } from './json-rpc-refusal.js'
import { DirectTransport } from './direct.js'
import { createServerPool } from './pool.js'
import type { McpAnswer, McpExecution, McpSeam } from './seam.js'
import { ServerRequests } from './server-requests.js'

/** Options of {@link createSdkV2Seam}. */
export interface SdkV2SeamOptions {
  /** The resource URI (handed to tools in `authInfo.resource`, and to the listing). */
  readonly resource: string
  /**
   * 2025-11-25 answers with JSON (true) or an SSE stream, as on v1. (2026-07-28 answers are the
   * SDK's `auto`: JSON unless the tool sends notifications before its result.)
   */
  readonly jsonResponse: boolean
  /** The key and lifetime of Multi Round-Trip continuations (default: a random key, 600 s). */
  readonly continuations?: ContinuationOptions
}

/**
 * One JSON Schema validator for every server: the SDK's `Server` constructor otherwise builds a
 * new one (an Ajv with its formats, on Node) for each request's server. It keeps no per-request
 * state (it caches what it compiles by schema object).
 */
const validator = new DefaultJsonSchemaValidator()

/** The 2026-07-28 revisions the v2 SDK serves (it names no public constant for them). */
const MODERN_REVISIONS: readonly string[] = [FIRST_MODERN_REVISION]

/** What the factory of one request needs to know about it. */
interface ServedRequest {
  readonly caller: Caller
  readonly now: number
  readonly binding: McpBinding | undefined
}

/**
 * The MCP SDK v2 behind the pipeline, serving `tools` on 2026-07-28 and 2025-11-25.
 *
 * @example
 * ```ts
 * const seam = createSdkV2Seam(tools, { resource, jsonResponse: true })
 * const response = await seam.execute({ request, call, accessToken, now: Date.now() })
 * ```
 */
export function createSdkV2Seam(tools: ToolRegistry, options: SdkV2SeamOptions): McpSeam {
  const { resource } = options
  const registrations = registrationsOf(tools)
  const continuations = createContinuations(options.continuations)
  const serverRequests = new ServerRequests()
  // Keyed by the very `authInfo` object handed to the SDK, which passes it to the factory.
  const served = new WeakMap<AuthInfo, ServedRequest>()
  // The tool's own `requestState` of an admitted continuation, by the verified message.
  const opened = new WeakMap<object, string | undefined>()
  // Pooled servers of the 2025-11-25 leg (see `runPooled`), and the SDK's own descriptions of
  // the tools, asked once per set of registrations.
  let toolDescriptors: Promise<ReadonlyMap<string, Tool>> | undefined
  const pool = createServerPool({
    build: () => pooledServer(),
    version: () => registrations.version,
    onRefresh: () => {
      toolDescriptors = undefined
    },
  })

  // 2026-07-28 only: 2025-11-25 requests are served by `serveLegacy`, which answers JSON when
  // asked to (the SDK's own stateless fallback always streams).
  const handler = createMcpHandler(serverFor, {
    legacy: 'reject',
    // `auto`: JSON unless the tool sends notifications before its result (progress, logs), then
    // SSE. (The SDK's `json` mode would drop those notifications.)
    responseMode: 'auto',
    // What the SDK refuses after the pipeline let a request through is a bug of this seam's
    // refusal() (logged, never shown to the caller).
    onerror: (error) => {
      if (!(error instanceof Error) || !/^Rejected|Unsupported Media/.test(error.message)) {
        console.error('callproof: the MCP SDK v2 failed', error)
      }
    },
  })

  /** The server of one request: what its caller may see, nothing of anyone else. */
  function serverFor(context: McpRequestContext): McpServer {
    const request = context.authInfo !== undefined ? served.get(context.authInfo) : undefined
    if (request === undefined) throw new Error('a request without a verified caller')
    const { caller, now } = request
    const listing = { resource, now }
    const server = new McpServer(registrations.info, {
      capabilities: {
        tools: {},
        ...(registrations.options.logging === true ? { logging: {} } : {}),
      },
      jsonSchemaValidator: validator,
    })
    const toolMeta = new Map(listingFor(tools, caller, listing).map((t) => [t.name, t.meta]))
    for (const { name, config, callback } of registrations.entries.values()) {
      const meta = toolMeta.get(name)
      if (meta === undefined) continue
      const { policy: _policy, downstream: _downstream, _meta: _own, ...sdkConfig } = config
      server.registerTool(
        name,
        { ...sdkConfig, _meta: meta } as Parameters<McpServer['registerTool']>[1],
        withV1Extra(callback, config.inputSchema !== undefined) as never,
      )
    }
    for (const { entry, meta } of visibleTo(
      tools,
      registrations.prompts.values(),
      (p) => p.name,
      caller,
      listing,
    )) {
      const { policy: _policy, ...sdkConfig } = entry.config
      server.registerPrompt(
        entry.name,
        { ...sdkConfig, _meta: meta } as Parameters<McpServer['registerPrompt']>[1],
        withV1Extra(entry.callback, entry.config.argsSchema !== undefined) as never,
      )
    }
    const hasResources = registrations.resources.size > 0 || registrations.templates.size > 0
    for (const { entry, meta } of visibleTo(
      tools,
      registrations.resources.values(),
      (r) => r.uri,
      caller,
      listing,
    )) {
      server.registerResource(
        entry.name,
        entry.uri,
        { ...metadataOf(entry.config), _meta: meta },
        (uri: URL, ctx: ServerContext) => entry.read(uri, v1Extra(ctx) as never) as never,
      )
    }
    for (const entry of registrations.templates.values()) {
      const list = entry.config.list
      const template = new ResourceTemplate(entry.template.toString(), {
        // Each concrete resource is listed under the policy of what its URI resolves to: what a
        // read of it would be decided by.
        list:
          list === undefined
            ? undefined
            : async (ctx) => {
                const result = await list(v1Extra(ctx) as never)
                return {
                  ...result,
                  resources: result.resources.flatMap((item) => {
                    const policy = resolveResource(tools, item.uri)?.entry.config.policy
                    if (policy === undefined || !isVisible(tools, policy, caller)) return []
                    const shown = visibleTo(
                      tools,
                      [{ config: { policy } }],
                      () => item.uri,
                      caller,
                      listing,
                    )
                    return [
                      {
                        ...item,
                        _meta: {
                          ...item._meta,
                          [POLICY_META_KEY]: shown[0]?.meta[POLICY_META_KEY],
                        },
                      },
                    ]
                  }),
                }
              },
        ...(entry.config.complete !== undefined
          ? { complete: entry.config.complete as never }
          : {}),
      })
      server.registerResource(entry.name, template, metadataOf(entry.config), entry.read as never)
    }
    if (hasResources) {
      // The very lookup the pipeline decided with: the policy checked is this resource's.
      server.server.setRequestHandler('resources/read', async (read, ctx) => {
        const found = resolveResource(tools, read.params.uri)
        if (found === undefined) {
          throw new ProtocolError(ProtocolErrorCode.ResourceNotFound, 'Resource not found', {
            uri: read.params.uri,
          })
        }
        const uri = new URL(read.params.uri)
        const extra = v1Extra(ctx) as never
        const answer =
          'variables' in found
            ? found.entry.read(uri, found.variables, extra)
            : found.entry.read(uri, extra)
        return (await answer) as never
      })
    }
    registrations.options.setup?.(server as never, caller)
    if (context.era === 'modern' && request.binding !== undefined) {
      sealContinuations(server, caller, request.binding)
    }
    return server
  }

  /**
   * Rule 3: the `requestState` of every `InputRequiredResult` this server sends is replaced by a
   * seal of it to the caller and the call. Hooked where the SDK connects the server to the
   * request's transport, the one place every answer passes.
   */
  function sealContinuations(server: McpServer, caller: Caller, binding: McpBinding): void {
    const connect = server.connect.bind(server)
    server.connect = async (transport: Transport) => {
      const send = transport.send.bind(transport)
      transport.send = async (message, sendOptions) => {
        const result = (message as { result?: Record<string, unknown> }).result
        if (result?.resultType !== 'input_required') return send(message, sendOptions)
        const state = typeof result.requestState === 'string' ? result.requestState : undefined
        const requestState = await continuations.seal(state, caller, binding)
        return send(
          { ...message, result: { ...result, requestState } } as JSONRPCMessage,
          sendOptions,
        )
      }
      return connect(transport)
    }
  }

  /**
   * Whether a 2025-11-25 request may run on a pooled server (the rules of v1.ts, rule 1 to 4):
   * a JSON answer, no `setup` hook shaping a server for one caller, not `initialize` (which
   * leaves the client's capabilities in the server), and a registry of tools only. (Prompts and
   * resources are listed per caller by registering only what the caller may see, so their
   * servers are still built per request.)
   */
  function poolable(message: unknown): boolean {
    return (
      options.jsonResponse &&
      registrations.options.setup === undefined &&
      !isInitialize(message) &&
      registrations.prompts.size === 0 &&
      registrations.resources.size === 0 &&
      registrations.templates.size === 0
    )
  }

  /**
   * A server with every registered tool, whose `tools/list` answers for the request's caller
   * (`listingFor`, as the per-request servers and v1 list): the pipeline has already refused a
   * call the caller can never be granted, so every tool may stay registered.
   */
  function pooledServer(): McpServer {
    const server = toolServer()
    server.server.setRequestHandler('tools/list', async (_request, ctx) => {
      const request = ctx.http?.authInfo !== undefined ? served.get(ctx.http.authInfo) : undefined
      if (request === undefined) throw new Error('a request without a verified caller')
      const described = await describedTools()
      return {
        tools: listingFor(tools, request.caller, { resource, now: request.now }).map(
          ({ name, meta }) => ({ ...described.get(name)!, _meta: meta }),
        ),
      }
    })
    return server
  }

  /** A server with every registered tool as the SDK registers it (without callproof's policy). */
  function toolServer(): McpServer {
    const server = new McpServer(registrations.info, {
      capabilities: {
        tools: {},
        ...(registrations.options.logging === true ? { logging: {} } : {}),
      },
      jsonSchemaValidator: validator,
    })
    for (const { name, config, callback } of registrations.entries.values()) {
      const { policy: _policy, downstream: _downstream, _meta: _own, ...sdkConfig } = config
      server.registerTool(
        name,
        sdkConfig as Parameters<McpServer['registerTool']>[1],
        withV1Extra(callback, config.inputSchema !== undefined) as never,
      )
    }
    return server
  }

  /** Every tool as the SDK lists it (JSON Schemas from the registered schemas), asked once. */
  function describedTools(): Promise<ReadonlyMap<string, Tool>> {
    refreshIfRegistrationsChanged()
    toolDescriptors ??= (async () => {
      const server = toolServer()
      const transport = new DirectTransport()
      await server.connect(transport as never)
      const outcome = await transport.run(
        { jsonrpc: '2.0', id: 0, method: 'tools/list' },
        {
          authInfo: undefined as never,
        },
      )
      await server.close()
      const result =
        outcome.kind === 'answer'
          ? (outcome.message as { result?: { tools: Tool[] } }).result
          : undefined
      if (result === undefined) throw new Error('the MCP SDK v2 did not answer tools/list')
      return new Map(result.tools.map((tool) => [tool.name, tool]))
    })()
    return toolDescriptors
  }

  function refreshIfRegistrationsChanged(): void {
    pool.refresh()
  }

  /** A 2025-11-25 request on a pooled server, answered with JSON (pool.ts). */
  function runPooled(message: unknown, authInfo: AuthInfo, request: Request): Promise<McpAnswer> {
    return pool.run(message, { authInfo, request })
  }

  return {
    sessionless: isModernRequest,
    async refusal(request, _headers, message, call) {
      const modern = isModernRequest(request, message)
      const refused =
        transportRefusal(request, message) ??
        headerRefusal(request, message, call?.binding) ??
        // On either revision: the SDK lifts `inputResponses`/`requestState` off any request.
        (call !== undefined ? await continuationRefusal(message, call) : undefined)
      // A 2026-07-28 client is answered as the SDK answers these faults (a JSON-RPC error with
      // the request's id); a 2025-11-25 client as on v1.
      return refused !== undefined && modern && !(refused instanceof JsonRpcRefusal)
        ? asJsonRpc(refused, message)
        : refused
    },
    // A request a 2025-11-25 server sent to the client (sampling, elicitation, roots) is answered
    // only by the caller and session it went to, once (v1.ts rule 5; 2026-07-28 has none).
    admitAnswer(answer, caller, sessionId) {
      return serverRequests.admits(answer, { owner: ownerOf(caller), sessionId })
    },
    openStream: () => methodNotAllowed(),
    endSession: () => undefined,
    async execute({
      request,
      call,
      accessToken,
      now,
    }: McpExecution): Promise<Response | McpAnswer> {
      if (isAnswer(call.message)) {
        // Delivered to the server that asked, and only from its caller and session; else nowhere.
        serverRequests.deliver(call.message, {
          owner: ownerOf(call.caller),
          sessionId: request.headers.get('mcp-session-id'),
        })
        return new Response(null, { status: 202 })
      }
      const authInfo = authInfoFor(call.caller, accessToken, call.token.claims.exp, resource)
      served.set(authInfo, { caller: call.caller, now, binding: call.binding })
      let message = call.message
      if (isObject(message) && opened.has(message)) {
        // The tool gets back exactly the state it minted (or none, if it minted none).
        const own = opened.get(message)
        const params = { ...(message.params as Record<string, unknown>) }
        if (own === undefined) delete params.requestState
        else params.requestState = own
        message = { ...message, params }
      }
      if (isModernRequest(request, message)) {
        return handler.fetch(request, { authInfo, parsedBody: message })
      }
      return poolable(message)
        ? runPooled(message, authInfo, request)
        : serveLegacy(request, message, authInfo)
    },
  }

  /**
   * A 2025-11-25 request, on a server of its own over a stateless v2 Streamable HTTP transport
   * (what the SDK's fallback does, with `jsonResponse` honoured). A JSON answer is complete when
   * it is returned, and its server is closed; an SSE answer ends its stream, and its server, when
   * the request is answered.
   */
  async function serveLegacy(
    request: Request,
    message: unknown,
    authInfo: AuthInfo,
  ): Promise<Response> {
    const server = serverFor({ era: 'legacy', authInfo, requestInfo: request })
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: options.jsonResponse,
    })
    // A request the server sends the client leaves with an id of ours, remembered with the caller
    // and session it went to (server-requests.ts).
    const caller = served.get(authInfo)!.caller
    const asker = { owner: ownerOf(caller), sessionId: request.headers.get('mcp-session-id') }
    const send = transport.send.bind(transport)
    transport.send = (message, sendOptions) =>
      send(
        serverRequests.outgoing(message as never, asker, transport as never) as never,
        sendOptions,
      )
    await server.connect(transport)
    const closed = transport.onclose
    transport.onclose = () => {
      serverRequests.forget(transport as never)
      closed?.()
    }
    try {
      const response = await transport.handleRequest(request, { parsedBody: message, authInfo })
      if (!response.headers.get('content-type')?.startsWith('text/event-stream')) {
        nextTurn(() => void server.close().catch(() => undefined))
      }
      return response
    } catch (error) {
      await server.close().catch(() => undefined)
      throw error
    }
  }

  /**
   * Rule 3, on the way in: a request carrying `requestState` or `inputResponses` (whatever its
   * revision) continues a call only with a seal that opens for this caller and this call.
   */
  async function continuationRefusal(
    message: unknown,
    call: VerifiedCall,
  ): Promise<CallproofError | undefined> {
    const params = isObject(message) && isObject(message.params) ? message.params : undefined
    if (params === undefined || !('requestState' in params || 'inputResponses' in params)) {
      return undefined
    }
    const wire = params.requestState
    if (typeof wire !== 'string' || call.binding === undefined) {
      return new CallproofError(
        'ERR_INVALID_CONTINUATION',
        'a Multi Round-Trip continuation needs the requestState this server sent, and a call-bound proof',
      )
    }
    try {
      opened.set(message as object, await continuations.open(wire, call.caller, call.binding))
      return undefined
    } catch (error) {
      if (error instanceof CallproofError) return error
      throw error
    }
  }
}

/**
 * What the SDK v2 would refuse of this POST before running it, as a CallproofError: its media
 * type checks, its classification of the request (envelope, revision, the `Mcp-Method` and
 * version headers against the body) and, on 2025-11-25, the protocol version header.
 */
function transportRefusal(request: Request, message: unknown): CallproofError | undefined {
  if (!isJsonContentType(request.headers.get('content-type'))) {
    return new CallproofError('ERR_UNSUPPORTED_MEDIA_TYPE', 'Content-Type must be application/json')
  }
  const outcome = classifyInboundRequest({
    httpMethod: request.method,
    ...optional('protocolVersionHeader', request.headers.get('mcp-protocol-version')),
    ...optional('mcpMethodHeader', request.headers.get('mcp-method')),
    ...optional('mcpNameHeader', request.headers.get('mcp-name')),
    body: message,
  })
  if (outcome.kind === 'reject') {
    const code =
      outcome.code === HEADER_MISMATCH
        ? 'ERR_HEADER_MISMATCH'
        : outcome.code === ProtocolErrorCode.UnsupportedProtocolVersion
          ? 'ERR_UNSUPPORTED_PROTOCOL_VERSION'
          : 'ERR_MALFORMED_BODY'
    // Refused the SDK's own way: the status, code and data its ladder chose.
    return new JsonRpcRefusal(code, outcome.message.slice(0, 300), {
      status: outcome.httpStatus,
      code: outcome.code,
      ...(isObject(outcome.data) && { data: outcome.data }),
      id: idOf(message),
    })
  }
  if (outcome.kind === 'modern') {
    const method = (message as { method?: unknown }).method
    if (
      typeof method === 'string' &&
      REMOVED_IN_MODERN.has(method) &&
      'id' in (message as object)
    ) {
      // Removed from 2026-07-28 (subscriptions/listen replaces them): the SDK's method-not-found,
      // before the URI's policy would answer for a method that does not exist.
      return new JsonRpcRefusal('ERR_MALFORMED_BODY', `Method not found: ${method}`, {
        status: 404,
        code: ProtocolErrorCode.MethodNotFound,
        id: idOf(message),
      })
    }
    const revision = envelopeVersionOf(message)
    if (revision === undefined || !MODERN_REVISIONS.includes(revision)) {
      const sdk = new UnsupportedProtocolVersionError({
        supported: [...MODERN_REVISIONS],
        requested: revision ?? 'unknown',
      })
      return new JsonRpcRefusal(
        'ERR_UNSUPPORTED_PROTOCOL_VERSION',
        `protocol version ${String(revision).slice(0, 40)} is not supported (supported: ${MODERN_REVISIONS.join(', ')})`,
        { status: 400, code: sdk.code, data: { ...(sdk.data as object) }, id: idOf(message) },
      )
    }
    return undefined
  }
  // 2025-11-25: what the SDK's Streamable HTTP transport refuses, as on v1.
  const accept = request.headers.get('accept') ?? ''
  if (!accept.includes('application/json') || !accept.includes('text/event-stream')) {
    return new CallproofError(
      'ERR_NOT_ACCEPTABLE',
      'Accept must list both application/json and text/event-stream (MCP Streamable HTTP)',
    )
  }
  const version = isInitialize(message) ? null : request.headers.get('mcp-protocol-version')
  if (version !== null && !SUPPORTED_PROTOCOL_VERSIONS.includes(version)) {
    return new CallproofError(
      'ERR_UNSUPPORTED_PROTOCOL_VERSION',
      `MCP-Protocol-Version ${version.slice(0, 40)} is not supported (supported: ${[...MODERN_REVISIONS, ...SUPPORTED_PROTOCOL_VERSIONS].join(', ')})`,
    )
  }
  return undefined
}

/** Methods of 2025-11-25 that 2026-07-28 removed and that a policy would otherwise decide. */
const REMOVED_IN_MODERN = new Set(['resources/subscribe', 'resources/unsubscribe'])

/** The SDK's JSON-RPC code for headers that disagree with the body (SEP-2243). */
const HEADER_MISMATCH = -32020

/** A refusal of callproof's own on a 2026-07-28 request, answered as the SDK answers the fault. */
function asJsonRpc(error: CallproofError, message: unknown): JsonRpcRefusal {
  const id = idOf(message)
  switch (error.code) {
    case 'ERR_HEADER_MISMATCH':
      return new JsonRpcRefusal(error.code, error.message, {
        status: 400,
        code: HEADER_MISMATCH,
        id,
      })
    case 'ERR_INVALID_CONTINUATION':
      // The SDK's answer to a requestState its verify hook refuses.
      return new JsonRpcRefusal(error.code, error.message, {
        status: 400,
        code: ProtocolErrorCode.InvalidParams,
        data: { reason: 'invalid_request_state' },
        id,
      })
    case 'ERR_UNSUPPORTED_MEDIA_TYPE':
      return new JsonRpcRefusal(error.code, error.message, { status: 415, code: -32000, id })
    default:
      return new JsonRpcRefusal(error.code, error.message, {
        status: 400,
        code: ProtocolErrorCode.InvalidRequest,
        id,
      })
  }
}

/** The id of a JSON-RPC message, for its error answer (`null` when it has none). */
function idOf(message: unknown): string | number | null {
  const id = (message as { id?: unknown } | undefined)?.id
  return typeof id === 'string' || typeof id === 'number' ? id : null
}

function optional<K extends string>(key: K, value: string | null): Partial<Record<K, string>> {
  return value === null ? {} : ({ [key]: value } as Record<K, string>)
}

/** A registration's SDK metadata: everything but callproof's policy and the template callbacks. */
function metadataOf(config: object): Record<string, unknown> {
  const {
    policy: _policy,
    list: _list,
    complete: _complete,
    ...metadata
  } = config as Record<string, unknown>
  return metadata
}

/**
 * The registry's callbacks have SDK v1's signature (`extra.authInfo`, `extra._meta`,
 * `extra.sendNotification`, …); SDK v2 hands its handlers a `ServerContext` (`ctx.http.authInfo`,
 * `ctx.mcpReq._meta`, `ctx.mcpReq.notify`, …). They get the context with v1's names added, so
 * that the same registration runs on either line, and v2 code can still read `ctx.mcpReq`.
 */
function v1Extra(ctx: ServerContext): ServerContext & Record<string, unknown> {
  const { mcpReq } = ctx
  const extra: ServerContext & Record<string, unknown> = {
    ...ctx,
    authInfo: ctx.http?.authInfo,
    requestId: mcpReq.id,
    signal: mcpReq.signal,
    _meta: mcpReq._meta,
    sendNotification: mcpReq.notify,
    sendRequest: (
      request: { method: string; params?: Record<string, unknown> },
      ...rest: never[]
    ) => (mcpReq.send as (r: unknown, ...more: unknown[]) => Promise<unknown>)(request, ...rest),
  }
  // Copied only if the callback reads it: a copy of every header per call costs more than the
  // call's own work on a small tool.
  const req = ctx.http?.req
  if (req !== undefined) {
    let copy: { headers: Record<string, string> } | undefined
    Object.defineProperty(extra, 'requestInfo', {
      get: () => (copy ??= { headers: headersOf(req) }),
      enumerable: true,
    })
  }
  return extra
}

/** A callback of the registry (`(args, extra)`, or `(extra)` without a schema) on SDK v2. */
function withV1Extra(callback: unknown, takesArgs: boolean): unknown {
  const run = callback as (...args: unknown[]) => unknown
  return takesArgs
    ? (args: unknown, ctx: ServerContext) => run(args, v1Extra(ctx))
    : (ctx: ServerContext) => run(v1Extra(ctx))
}

function headersOf(request: Request): Record<string, string> {
  return Object.fromEntries(request.headers)
}

/** Subject, client and key: the caller a server request belongs to (as in v1.ts). */
function ownerOf(caller: Caller): string {
  return JSON.stringify([caller.sub, caller.clientId, caller.jkt])
}

/** A JSON-RPC response or error (bindingShape has checked the shape: an id and no method). */
function isAnswer(message: unknown): message is { id: string | number } {
  return isObject(message) && !('method' in message) && ('result' in message || 'error' in message)
}

/** The next turn of the event loop, after every pending promise callback (as in v1.ts). */
const nextTurn: (callback: () => void) => void =
  typeof setImmediate === 'function' ? setImmediate : (callback) => setTimeout(callback, 0)

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function isInitialize(message: unknown): boolean {
  return (message as { method?: unknown } | undefined)?.method === 'initialize'
}

function methodNotAllowed(): Response {
  return new Response(
    JSON.stringify({
      jsonrpc: '2.0',
      error: { code: -32000, message: 'Method not allowed.' },
      id: null,
    }),
    { status: 405, headers: { allow: 'POST', 'content-type': 'application/json' } },
  )
}
